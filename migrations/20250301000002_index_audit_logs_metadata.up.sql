-- no-transaction
-- Audit searches by metadata (e.g. {"api_key_id": ...}); built without blocking audit writes.
CREATE INDEX CONCURRENTLY idx_audit_logs_metadata ON audit_logs USING GIN (metadata jsonb_path_ops);
