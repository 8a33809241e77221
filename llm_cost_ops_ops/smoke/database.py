"""The database check: the application's credentials connect, and sqlx's migration ledger
(`_sqlx_migrations`) is at the expected version with no dirty (`success = false`) row."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

from .results import CheckResult

_LEDGER_QUERY = "SELECT version, success FROM _sqlx_migrations ORDER BY version"


def latest_migration_version(directory: Path) -> int | None:
    """The highest version among `<version>_<description>.sql` / `.up.sql` files, or None."""
    if not directory.is_dir():
        return None
    versions = [
        int(path.name.split("_", 1)[0])
        for path in directory.glob("*.sql")
        if not path.name.endswith(".down.sql") and path.name.split("_", 1)[0].isdigit()
    ]
    return max(versions, default=None)


def _error_line(exc: BaseException, dsn: str) -> str:
    # psycopg names the host and the role; a malformed DSN may be echoed whole, so mask it.
    first = (str(exc).strip().splitlines() or [""])[0]
    password = urlsplit(dsn).password if "://" in dsn else None
    for secret in (dsn, password):
        if secret:
            first = first.replace(secret, "***")
    return f"{type(exc).__name__}: {first}"[:300]


def check_database(
    dsn: str,
    expected_version: int | None,
    *,
    connect_timeout: float = 5.0,
    clock: Callable[[], float] = time.perf_counter,
) -> CheckResult:
    """Connect with `dsn`, read the migration ledger and compare it with `expected_version` (the
    newest migration in the project; None: only require a ledger with no dirty row)."""
    expected = (
        f"ledger at version {expected_version}, no dirty row"
        if expected_version is not None
        else "a migration ledger with no dirty row"
    )
    import psycopg  # here, not at module level: the code location loads without it

    started = clock()
    try:
        with psycopg.connect(dsn, connect_timeout=max(1, round(connect_timeout))) as conn:
            rows = conn.execute(_LEDGER_QUERY).fetchall()
    except psycopg.errors.UndefinedTable:
        return CheckResult(
            "database", False, expected, "connected; no _sqlx_migrations table", clock() - started
        )
    except psycopg.Error as exc:
        return CheckResult("database", False, expected, _error_line(exc, dsn), clock() - started)
    latency = clock() - started
    dirty = [int(version) for version, success in rows if not success]
    applied = [int(version) for version, success in rows if success]
    latest = max(applied, default=None)
    seen = f"version {latest} ({len(applied)} applied)" if latest is not None else "no migration applied"
    if dirty:
        seen += f"; dirty: {', '.join(map(str, dirty))}"
    passed = not dirty and (expected_version is None or latest == expected_version)
    details = {"applied": len(applied), "dirty": len(dirty)}
    return CheckResult("database", passed, expected, seen, latency, details=details)
