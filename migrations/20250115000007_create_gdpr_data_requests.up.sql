-- Data subject requests (GDPR Articles 15-22): access, rectification, erasure, restriction,
-- portability, objection. Article 12(3): answered within one month of receipt.
CREATE TABLE gdpr_data_requests (
    id               UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    organization_id  TEXT NOT NULL,
    subject_id       TEXT NOT NULL,
    request_type     TEXT NOT NULL CHECK (request_type IN ('access', 'rectification', 'erasure',
                                                           'restriction', 'portability', 'objection')),
    status           TEXT NOT NULL DEFAULT 'received'
                     CHECK (status IN ('received', 'verifying', 'in_progress', 'completed', 'rejected')),
    requested_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    due_at           TIMESTAMPTZ NOT NULL DEFAULT now() + INTERVAL '1 month',
    verified_at      TIMESTAMPTZ,
    completed_at     TIMESTAMPTZ,
    handled_by       TEXT,
    rejection_reason TEXT,
    -- Access and portability: where the export was delivered and its digest.
    export_location  TEXT,
    export_sha256    BYTEA,
    notes            TEXT,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT gdpr_data_requests_completion CHECK (status <> 'completed' OR completed_at IS NOT NULL),
    CONSTRAINT gdpr_data_requests_rejection CHECK (status <> 'rejected' OR rejection_reason IS NOT NULL)
);

CREATE INDEX idx_gdpr_requests_org_time ON gdpr_data_requests (organization_id, requested_at DESC);
CREATE INDEX idx_gdpr_requests_subject ON gdpr_data_requests (organization_id, subject_id);
-- The compliance dashboard: open requests by deadline.
CREATE INDEX idx_gdpr_requests_open_due
    ON gdpr_data_requests (due_at)
    WHERE status NOT IN ('completed', 'rejected');

CREATE TRIGGER gdpr_data_requests_updated_at
    BEFORE UPDATE ON gdpr_data_requests
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
