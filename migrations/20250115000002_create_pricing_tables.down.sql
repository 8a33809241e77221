DROP TABLE pricing_tables;
DROP FUNCTION set_updated_at();
