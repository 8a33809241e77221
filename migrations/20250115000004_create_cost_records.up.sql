-- The cost of one usage record under the price list in force at its timestamp.
CREATE TABLE cost_records (
    id               UUID PRIMARY KEY DEFAULT uuid_generate_v4(),
    usage_id         UUID NOT NULL REFERENCES usage_records (id) ON DELETE CASCADE,
    pricing_table_id UUID REFERENCES pricing_tables (id) ON DELETE RESTRICT,
    "timestamp"      TIMESTAMPTZ NOT NULL,
    organization_id  TEXT NOT NULL,
    project_id       TEXT,
    provider         TEXT NOT NULL,
    model            TEXT NOT NULL,
    input_cost       NUMERIC(20, 10) NOT NULL,
    output_cost      NUMERIC(20, 10) NOT NULL,
    cached_cost      NUMERIC(20, 10) NOT NULL DEFAULT 0,
    total_cost       NUMERIC(20, 10) NOT NULL,
    currency         CHAR(3) NOT NULL DEFAULT 'USD',
    calculated_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT cost_records_one_per_usage UNIQUE (usage_id),
    CONSTRAINT cost_records_non_negative CHECK (input_cost >= 0 AND output_cost >= 0 AND cached_cost >= 0),
    CONSTRAINT cost_records_total CHECK (total_cost = input_cost + output_cost + cached_cost)
);

-- GET /api/v1/costs: an organization's spend over time, overall and per model.
CREATE INDEX idx_cost_records_org_time ON cost_records (organization_id, "timestamp" DESC);
CREATE INDEX idx_cost_records_org_model_time
    ON cost_records (organization_id, provider, model, "timestamp" DESC);
-- Foreign keys are not indexed by PostgreSQL; a price list cannot be deleted without this scan.
CREATE INDEX idx_cost_records_pricing_table ON cost_records (pricing_table_id);
