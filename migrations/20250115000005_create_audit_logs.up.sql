-- Who did what to which resource, kept for compliance (SOC 2, GDPR Article 30).
CREATE TABLE audit_logs (
    id              UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    occurred_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    organization_id TEXT,
    actor_id        TEXT,
    actor_type      TEXT NOT NULL CHECK (actor_type IN ('user', 'service', 'api_key', 'system')),
    action          TEXT NOT NULL,
    resource_type   TEXT NOT NULL,
    resource_id     TEXT,
    outcome         TEXT NOT NULL CHECK (outcome IN ('success', 'failure', 'denied')),
    ip_address      INET,
    user_agent      TEXT,
    request_id      TEXT,
    changes         JSONB,
    metadata        JSONB NOT NULL DEFAULT '{}'::jsonb,
    -- SHA-256 over the row's content, so an edit made behind the application shows.
    row_hash        BYTEA NOT NULL
);

CREATE INDEX idx_audit_logs_org_time ON audit_logs (organization_id, occurred_at DESC);
CREATE INDEX idx_audit_logs_actor_time ON audit_logs (actor_id, occurred_at DESC);
CREATE INDEX idx_audit_logs_resource ON audit_logs (resource_type, resource_id, occurred_at DESC);

CREATE FUNCTION audit_logs_seal() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        RAISE EXCEPTION 'audit_logs rows are never updated (row %)', OLD.id
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    NEW.row_hash := digest(
        convert_to(concat_ws('|', NEW.id, NEW.occurred_at, NEW.organization_id, NEW.actor_id,
                             NEW.actor_type, NEW.action, NEW.resource_type, NEW.resource_id,
                             NEW.outcome, NEW.changes::text, NEW.metadata::text), 'UTF8'),
        'sha256');
    RETURN NEW;
END;
$$;

-- Rows are sealed on insert and never rewritten; retention deletes old rows, it does not edit them.
CREATE TRIGGER audit_logs_seal
    BEFORE INSERT OR UPDATE ON audit_logs
    FOR EACH ROW EXECUTE FUNCTION audit_logs_seal();
