-- no-transaction
-- For the analytics endpoint's per-model breakdown. Built CONCURRENTLY so ingestion keeps writing
-- to usage_records while it builds; CONCURRENTLY cannot run in a transaction, hence the first line,
-- and one statement per file. A failed build leaves an INVALID index: drop it with
-- DROP INDEX CONCURRENTLY before running the migration again.
CREATE INDEX CONCURRENTLY idx_usage_records_model_time
    ON usage_records (organization_id, provider, model_name, "timestamp" DESC);
