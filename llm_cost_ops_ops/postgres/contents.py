"""What a database holds, as a backup manifest records it and a restore drill checks it:
exact per-table row counts, the sqlx migration ledger, and a few sanity queries.

Counts are exact `count(*)`, fine for the platform's tables. Run inside the transaction whose
snapshot pg_dump uses (`--snapshot`), they describe exactly the rows the dump holds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

# Tables pg_dump writes data for: ordinary and partitioned tables (partitions are counted through
# their parent), outside the system schemas, not owned by an extension.
_TABLES = """
SELECT n.nspname, c.relname
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'
  AND NOT EXISTS (SELECT 1 FROM pg_depend d
                  WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
ORDER BY 1, 2
"""
_INVALID_INDEXES = """
SELECT n.nspname || '.' || c.relname
FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE NOT i.indisvalid ORDER BY 1
"""
# Sequences owned by a column (serial or identity) with the table and column they feed.
_OWNED_SEQUENCES = """
SELECT sn.nspname, s.relname, tn.nspname, t.relname, a.attname
FROM pg_depend d
JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S'
JOIN pg_namespace sn ON sn.oid = s.relnamespace
JOIN pg_class t ON t.oid = d.refobjid
JOIN pg_namespace tn ON tn.oid = t.relnamespace
JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = d.refobjsubid
WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass
  AND d.deptype IN ('a', 'i')
ORDER BY 1, 2
"""


@dataclass(frozen=True)
class LedgerState:
    """The sqlx ledger: whether it exists, the newest successful version, dirty versions."""

    present: bool
    latest: int | None
    dirty: tuple[int, ...]


def table_row_counts(conn: psycopg.Connection[Any]) -> dict[str, int]:
    """`schema.table` -> exact row count, for every table pg_dump dumps data of."""
    counts: dict[str, int] = {}
    for schema, table in conn.execute(_TABLES).fetchall():
        query = sql.SQL("SELECT count(*) FROM {}.{}").format(sql.Identifier(schema), sql.Identifier(table))
        row = conn.execute(query).fetchone()
        counts[f"{schema}.{table}"] = int(row[0]) if row else 0
    return counts


def ledger_state(conn: psycopg.Connection[Any]) -> LedgerState:
    """The `_sqlx_migrations` ledger found on the search path (absent: present=False)."""
    row = conn.execute("SELECT to_regclass('_sqlx_migrations') IS NOT NULL").fetchone()
    if not row or not row[0]:
        return LedgerState(False, None, ())
    latest = conn.execute("SELECT max(version) FROM _sqlx_migrations WHERE success").fetchone()
    dirty = conn.execute("SELECT version FROM _sqlx_migrations WHERE NOT success ORDER BY 1").fetchall()
    return LedgerState(
        True, int(latest[0]) if latest and latest[0] is not None else None, tuple(int(r[0]) for r in dirty)
    )


def invalid_indexes(conn: psycopg.Connection[Any]) -> list[str]:
    """Indexes left invalid (a failed CREATE INDEX in the restore)."""
    return [str(r[0]) for r in conn.execute(_INVALID_INDEXES).fetchall()]


def lagging_sequences(conn: psycopg.Connection[Any]) -> list[str]:
    """Serial/identity sequences behind their column's maximum: the next insert would collide."""
    lagging: list[str] = []
    for seq_schema, seq, schema, table, column in conn.execute(_OWNED_SEQUENCES).fetchall():
        query = sql.SQL("SELECT (SELECT last_value FROM {}.{}), (SELECT max({}) FROM {}.{})").format(
            sql.Identifier(seq_schema),
            sql.Identifier(seq),
            sql.Identifier(column),
            sql.Identifier(schema),
            sql.Identifier(table),
        )
        row = conn.execute(query).fetchone()
        if row and row[1] is not None and int(row[0]) < int(row[1]):
            lagging.append(f"{seq_schema}.{seq} at {row[0]} < max({table}.{column}) = {row[1]}")
    return lagging
