-- A data subject's consent (or other lawful basis) for one processing purpose, GDPR Articles 6-7.
CREATE TABLE gdpr_consent_records (
    id              UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    organization_id TEXT NOT NULL,
    subject_id      TEXT NOT NULL,
    purpose         TEXT NOT NULL,
    lawful_basis    TEXT NOT NULL CHECK (lawful_basis IN ('consent', 'contract', 'legal_obligation',
                                                          'vital_interests', 'public_task',
                                                          'legitimate_interests')),
    status          TEXT NOT NULL CHECK (status IN ('granted', 'withdrawn', 'expired')),
    policy_version  TEXT NOT NULL,
    granted_at      TIMESTAMPTZ,
    withdrawn_at    TIMESTAMPTZ,
    expires_at      TIMESTAMPTZ,
    source          TEXT NOT NULL DEFAULT 'api',
    ip_address      INET,
    -- What the subject saw and answered (form version, wording hash), as proof of consent.
    evidence        JSONB NOT NULL DEFAULT '{}'::jsonb,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT gdpr_consent_withdrawal CHECK ((status = 'withdrawn') = (withdrawn_at IS NOT NULL))
);

-- At most one granted consent per subject and purpose.
CREATE UNIQUE INDEX uq_gdpr_consent_granted
    ON gdpr_consent_records (organization_id, subject_id, purpose)
    WHERE status = 'granted';
CREATE INDEX idx_gdpr_consent_org_time ON gdpr_consent_records (organization_id, created_at DESC);
CREATE INDEX idx_gdpr_consent_expiring
    ON gdpr_consent_records (expires_at)
    WHERE status = 'granted' AND expires_at IS NOT NULL;

CREATE TRIGGER gdpr_consent_records_updated_at
    BEFORE UPDATE ON gdpr_consent_records
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
