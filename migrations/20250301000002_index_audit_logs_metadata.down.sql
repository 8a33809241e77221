-- no-transaction
DROP INDEX CONCURRENTLY IF EXISTS idx_audit_logs_metadata;
