-- One row per LLM call reported to POST /api/v1/usage.
CREATE TABLE usage_records (
    id                     UUID PRIMARY KEY DEFAULT uuid_generate_v4(),
    "timestamp"            TIMESTAMPTZ NOT NULL,
    organization_id        TEXT NOT NULL,
    project_id             TEXT,
    user_id                TEXT,
    -- The caller's id for the request; makes ingestion idempotent per organization.
    request_id             TEXT,
    provider               TEXT NOT NULL,
    model_name             TEXT NOT NULL,
    model_version          TEXT,
    context_window         BIGINT,
    prompt_tokens          BIGINT NOT NULL CHECK (prompt_tokens >= 0),
    completion_tokens      BIGINT NOT NULL CHECK (completion_tokens >= 0),
    total_tokens           BIGINT NOT NULL,
    cached_tokens          BIGINT CHECK (cached_tokens >= 0),
    reasoning_tokens       BIGINT CHECK (reasoning_tokens >= 0),
    latency_ms             BIGINT CHECK (latency_ms >= 0),
    time_to_first_token_ms BIGINT CHECK (time_to_first_token_ms >= 0),
    tags                   TEXT[] NOT NULL DEFAULT '{}',
    metadata               JSONB NOT NULL DEFAULT '{}'::jsonb,
    source_type            TEXT NOT NULL DEFAULT 'api',
    ingested_at            TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT usage_records_total_tokens CHECK (total_tokens >= prompt_tokens + completion_tokens)
);

-- GET /api/v1/usage/history and the analytics endpoint: one organization over a time range.
CREATE INDEX idx_usage_records_org_time ON usage_records (organization_id, "timestamp" DESC);
CREATE INDEX idx_usage_records_project_time
    ON usage_records (organization_id, project_id, "timestamp" DESC)
    WHERE project_id IS NOT NULL;
CREATE UNIQUE INDEX uq_usage_records_request
    ON usage_records (organization_id, request_id)
    WHERE request_id IS NOT NULL;
CREATE INDEX idx_usage_records_tags ON usage_records USING GIN (tags);
