"""A database shaped like the platform's: usage and cost ledgers, pricing, audit log, sqlx ledger.

Used by the backup tests (a few thousand rows) and `make bench-backup` (sized in megabytes).
Values are generated in SQL, pseudo-random, so the data compresses about as real ledgers do
(uuids and numbers, a handful of providers and models, small JSON documents).
"""

from __future__ import annotations

from typing import Any

import psycopg

SCHEMA = """
CREATE TABLE pricing_tables (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    provider text NOT NULL, model text NOT NULL,
    input_price_per_million numeric(12, 6) NOT NULL, output_price_per_million numeric(12, 6) NOT NULL,
    currency text NOT NULL DEFAULT 'USD', effective_date timestamptz NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE usage_records (
    id uuid PRIMARY KEY, "timestamp" timestamptz NOT NULL,
    provider text NOT NULL, model_name text NOT NULL,
    organization_id text NOT NULL, project_id text, user_id text,
    prompt_tokens bigint NOT NULL, completion_tokens bigint NOT NULL, total_tokens bigint NOT NULL,
    latency_ms bigint, tags jsonb NOT NULL DEFAULT '[]', metadata jsonb NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX usage_records_org_time ON usage_records (organization_id, "timestamp");
CREATE TABLE cost_records (
    id uuid PRIMARY KEY, usage_id uuid NOT NULL REFERENCES usage_records (id),
    provider text NOT NULL, model text NOT NULL,
    input_cost numeric(20, 10) NOT NULL, output_cost numeric(20, 10) NOT NULL,
    total_cost numeric(20, 10) NOT NULL, currency text NOT NULL DEFAULT 'USD',
    "timestamp" timestamptz NOT NULL, organization_id text NOT NULL
);
CREATE INDEX cost_records_org_time ON cost_records (organization_id, "timestamp");
CREATE TABLE audit_logs (
    id bigserial PRIMARY KEY, event_type text NOT NULL, actor text NOT NULL,
    resource text NOT NULL, details jsonb NOT NULL, created_at timestamptz NOT NULL
);
CREATE TABLE _sqlx_migrations (
    version BIGINT PRIMARY KEY, description TEXT NOT NULL,
    installed_on TIMESTAMPTZ NOT NULL DEFAULT now(), success BOOLEAN NOT NULL,
    checksum BYTEA NOT NULL, execution_time BIGINT NOT NULL
);
INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) VALUES
    (20250115000001, 'initial schema', true, sha384('1'), 1000),
    (20250201000001, 'cost records', true, sha384('2'), 1000),
    (20250301000001, 'audit logs', true, sha384('3'), 1000);
INSERT INTO pricing_tables (provider, model, input_price_per_million, output_price_per_million,
                            effective_date)
SELECT p, m, (random() * 30)::numeric(12, 6), (random() * 60)::numeric(12, 6), now() - interval '90 days'
FROM unnest(ARRAY['openai', 'anthropic', 'google', 'azure']) p,
     unnest(ARRAY['large', 'medium', 'small', 'embed']) m;
"""
LATEST_MIGRATION = 20250301000001

_USAGE = """
INSERT INTO usage_records (id, "timestamp", provider, model_name, organization_id, project_id, user_id,
                           prompt_tokens, completion_tokens, total_tokens, latency_ms, tags, metadata)
SELECT gen_random_uuid(), now() - (g %% 525600) * interval '1 minute',
       (ARRAY['openai', 'anthropic', 'google', 'azure'])[1 + g %% 4],
       (ARRAY['gpt-4o', 'claude-sonnet', 'gemini-pro', 'gpt-4o-mini'])[1 + g %% 4],
       'org-' || (g %% 97), 'proj-' || (g %% 13), 'user-' || (g %% 1009),
       p, c, p + c, (random() * 4000)::bigint,
       jsonb_build_array('env:prod', 'team-' || (g %% 7)),
       jsonb_build_object('request_id', md5(g::text || random()::text), 'region', 'eu-west-' || g %% 3)
FROM (SELECT g, (random() * 8000)::bigint AS p, (random() * 2000)::bigint AS c
      FROM generate_series(%(first)s::int, %(last)s::int) g) s
"""
_COST = """
INSERT INTO cost_records (id, usage_id, provider, model, input_cost, output_cost, total_cost,
                          "timestamp", organization_id)
SELECT gen_random_uuid(), u.id, u.provider, u.model_name,
       u.prompt_tokens * 0.0000025, u.completion_tokens * 0.00001,
       u.prompt_tokens * 0.0000025 + u.completion_tokens * 0.00001, u."timestamp", u.organization_id
FROM usage_records u WHERE u.created_at >= %(since)s
"""
_AUDIT = """
INSERT INTO audit_logs (event_type, actor, resource, details, created_at)
SELECT (ARRAY['login', 'usage.write', 'pricing.update', 'export'])[1 + g %% 4], 'user-' || (g %% 1009),
       'org-' || (g %% 97), jsonb_build_object('ip', '10.0.' || g %% 256 || '.' || g %% 200), now()
FROM generate_series(1, %(rows)s::int) g
"""
# Database bytes on disk (tables and indexes) per usage record with its cost record and its share
# of the audit log, measured on PostgreSQL 15: a plain dump is about three quarters of that.
BYTES_PER_USAGE = 560


def create_platform_schema(conn: psycopg.Connection[Any]) -> None:
    conn.execute(SCHEMA)


def add_usage(conn: psycopg.Connection[Any], rows: int, *, batch: int = 200_000) -> None:
    """`rows` usage records, a cost record for each, and an audit entry per 20."""
    for first in range(1, rows + 1, batch):
        last = min(rows, first + batch - 1)
        since = conn.execute("SELECT clock_timestamp()").fetchone()
        conn.execute(_USAGE, {"first": first, "last": last})
        conn.execute(_COST, {"since": since[0] if since else None})
        conn.execute(_AUDIT, {"rows": max(1, (last - first + 1) // 20)})


def populate(dsn: str, *, usage_rows: int = 2000) -> None:
    """The schema and data in the (empty) database `dsn` names."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        create_platform_schema(conn)
        add_usage(conn, usage_rows)
        conn.execute("ANALYZE")


def rows_for_megabytes(megabytes: int) -> int:
    return max(1000, megabytes * 1_000_000 // BYTES_PER_USAGE)
