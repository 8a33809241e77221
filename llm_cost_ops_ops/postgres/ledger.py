"""sqlx's migration ledger and lock, exactly as sqlx-postgres/src/migrate.rs defines them.

The ledger is `_sqlx_migrations` with sqlx's DDL; a row is written only when a migration has
succeeded, in the migration's own transaction (sqlx inserts `success = TRUE`, never FALSE: a FALSE
row comes from older sqlx versions or hand edits and means "dirty").

The lock is sqlx's session-level advisory lock, so this runner and the application's migrator
exclude each other. Its key is sqlx's `generate_lock_id(current_database())`:

    0x3d32ad9e * (crc32_ieee(database_name.as_bytes()) as i64)

CRC-32/ISO-HDLC is zlib's crc32. The factor is below 2**30 and a CRC below 2**32, so the product
fits an i64 and never wraps in practice; `lock_id` still wraps to 64 bits as Rust's release build
would, so the function is right for any input.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from .errors import MigrationLockTimeout
from .source import Migration

LEDGER_TABLE = "_sqlx_migrations"
LOCK_ID_SALT = 0x3D32AD9E
LEDGER_DDL = """
CREATE TABLE IF NOT EXISTS _sqlx_migrations (
    version BIGINT PRIMARY KEY,
    description TEXT NOT NULL,
    installed_on TIMESTAMPTZ NOT NULL DEFAULT now(),
    success BOOLEAN NOT NULL,
    checksum BYTEA NOT NULL,
    execution_time BIGINT NOT NULL
);
"""
_HOLDERS = """
SELECT a.pid, coalesce(a.application_name, ''), coalesce(a.client_addr::text, 'local')
FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND l.classid::bigint = %s AND l.objid::bigint = %s
"""


def lock_id(database_name: str) -> int:
    """sqlx's advisory lock key for a database name (see the module docstring)."""
    product = (LOCK_ID_SALT * zlib.crc32(database_name.encode("utf-8"))) & (2**64 - 1)
    return product - 2**64 if product >= 2**63 else product


@dataclass(frozen=True)
class LedgerRow:
    version: int
    description: str
    installed_on: datetime
    success: bool
    checksum: bytes
    execution_time: int


def ledger_exists(conn: psycopg.Connection[Any]) -> bool:
    row = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (LEDGER_TABLE,)).fetchone()
    return bool(row and row[0])


def ensure_ledger(conn: psycopg.Connection[Any]) -> None:
    """Create the ledger with sqlx's DDL unless it exists (checked first: no NOTICE every run)."""
    if not ledger_exists(conn):
        conn.execute(LEDGER_DDL)


def read_ledger(conn: psycopg.Connection[Any]) -> dict[int, LedgerRow]:
    """Every ledger row by version ({} when the table does not exist yet)."""
    if not ledger_exists(conn):
        return {}
    rows = conn.execute(
        "SELECT version, description, installed_on, success, checksum, execution_time "
        "FROM _sqlx_migrations ORDER BY version"
    ).fetchall()
    return {row[0]: LedgerRow(row[0], row[1], row[2], row[3], bytes(row[4]), row[5]) for row in rows}


def record_applied(conn: psycopg.Connection[Any], migration: Migration, execution_ns: int) -> None:
    conn.execute(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) "
        "VALUES (%s, %s, TRUE, %s, %s)",
        (migration.version, migration.description, migration.checksum, execution_ns),
    )


def remove_applied(conn: psycopg.Connection[Any], version: int) -> None:
    conn.execute("DELETE FROM _sqlx_migrations WHERE version = %s", (version,))


def lock_holders(conn: psycopg.Connection[Any], key: int) -> list[str]:
    """Who holds the advisory lock `key` in this database, as 'pid N (application, client)'."""
    unsigned = key & (2**64 - 1)
    rows = conn.execute(_HOLDERS, (unsigned >> 32, unsigned & 0xFFFFFFFF)).fetchall()
    return [f"pid {pid} ({app or 'no application_name'}, {addr})" for pid, app, addr in rows]


@contextmanager
def migration_lock(
    conn: psycopg.Connection[Any],
    database: str,
    timeout_seconds: float | None,
    log: Callable[[str], None] | None = None,
) -> Iterator[int]:
    """Hold sqlx's migration lock for `database` on `conn` (an autocommit connection); yields the key.

    Waits with `pg_advisory_lock` under a `lock_timeout` (None waits forever, as sqlx does).
    Raises MigrationLockTimeout naming who holds the lock.
    """
    key = lock_id(database)
    row = conn.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()
    if not (row and row[0]):
        holders = ", ".join(lock_holders(conn, key)) or "another session"
        if log is not None:
            wait = "indefinitely" if timeout_seconds is None else f"up to {timeout_seconds:g}s"
            log(f"migration lock {key} on database {database} is held by {holders}; waiting {wait}")
        try:
            # A session-level advisory lock survives the end of the transaction that took it;
            # the transaction only scopes SET LOCAL lock_timeout to this one wait.
            with conn.transaction():
                if timeout_seconds is not None:
                    timeout = f"{max(1, round(timeout_seconds * 1000))}ms"
                    conn.execute("SELECT set_config('lock_timeout', %s, true)", (timeout,))
                conn.execute("SELECT pg_advisory_lock(%s)", (key,))
        except psycopg.errors.LockNotAvailable:
            holders = ", ".join(lock_holders(conn, key)) or holders
            raise MigrationLockTimeout(
                f"database {database}: the migration lock (pg_advisory_lock {key}) is still held by "
                f"{holders} after {timeout_seconds:g}s; another migration is running: wait for it "
                "or end that session"
            ) from None
    try:
        yield key
    finally:
        # Closing the session releases the lock anyway, so a failed unlock is harmless.
        if not conn.closed and not conn.broken:
            with suppress(psycopg.Error):
                conn.execute("SELECT pg_advisory_unlock(%s)", (key,))
