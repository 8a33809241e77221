-- no-transaction
DROP INDEX CONCURRENTLY IF EXISTS idx_usage_records_model_time;
