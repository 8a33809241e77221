"""Apply, revert and validate sqlx migrations, agreeing with sqlx on the ledger and the lock.

As sqlx's Migrator does: take the advisory lock (ledger.py), create `_sqlx_migrations` if needed,
refuse a dirty row, an applied version missing from the directory and a changed file, then apply
every pending migration in version order, each in its own transaction with its ledger row
(`-- no-transaction` files on the bare connection), stopping at the first failure.

Out-of-order versions: a pending version older than the newest applied one is applied, in version
order, as sqlx's `Migrator::run` and `sqlx migrate run` do (sqlx has no refusal for it; the runner
logs it). A `target` older than the newest applied version is refused, as `sqlx migrate run
--target-version` refuses it.

Where this runner is stricter than sqlx, on purpose:
- every ledger check runs before anything is applied (sqlx may apply earlier pending versions
  before it meets a changed one);
- `revert` refuses, before touching anything, when a version to revert has no `.down.sql` (sqlx
  skips such versions silently), and also refuses a changed file;
- the lock wait has a timeout (sqlx waits forever), and `info`, `validate` and dry runs only read.
`execution_time` is measured around the migration's SQL and written with its row (sqlx writes -1
and updates it after the commit), so a row never carries -1.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg

from .connection import connect, mask_dsn, redact
from .errors import LedgerProblem, MigrationError, MigrationTargetError, MissingDownMigration
from .failures import migration_failure
from .ledger import LedgerRow, ensure_ledger, migration_lock, read_ledger, record_applied, remove_applied
from .reports import MigrationReport, MigrationStatus, Step, statuses_of
from .source import Migration, default_migrations_dir, load_migrations
from .validation import ledger_problems

Log = Callable[[str], None]
DEFAULT_LOCK_TIMEOUT_SECONDS = 300.0


def _split(migrations: list[Migration]) -> tuple[dict[int, Migration], dict[int, Migration]]:
    ups = {m.version: m for m in migrations if not m.is_down}
    downs = {m.version: m for m in migrations if m.is_down}
    return ups, downs


class Migrator:
    """sqlx-compatible migrations from `directory` (default: the platform's `migrations/`) on `dsn`."""

    def __init__(
        self,
        dsn: str,
        directory: Path | str | None = None,
        *,
        lock_timeout_seconds: float | None = DEFAULT_LOCK_TIMEOUT_SECONDS,
        log: Log | None = None,
    ):
        self.dsn = dsn
        self.directory = Path(directory) if directory is not None else default_migrations_dir()
        self.lock_timeout_seconds = lock_timeout_seconds
        self._log = log or (lambda _: None)

    @property
    def masked_dsn(self) -> str:
        return mask_dsn(self.dsn)

    def _redact(self, text: str) -> str:
        return redact(text, self.dsn)

    def log(self, message: str) -> None:
        self._log(self._redact(message))

    def migrations(self) -> list[Migration]:
        """The directory's migrations. Raises MigrationSourceError or MalformedMigrationName."""
        return load_migrations(self.directory)

    @contextmanager
    def _session(self) -> Iterator[tuple[psycopg.Connection[Any], str]]:
        conn = connect(self.dsn)
        database = conn.info.dbname
        conn.add_notice_handler(lambda d: self.log(f"{d.severity}: {d.message_primary}"))
        try:
            row = conn.execute("SELECT current_database()").fetchone()
            database = str(row[0]) if row else database
            yield conn, database
        except psycopg.Error as exc:
            detail = self._redact(str(exc).strip()).replace("\n", " ")
            raise MigrationError(f"database {database} ({self.masked_dsn}): {detail}") from None
        finally:
            conn.close()

    def _read(self) -> tuple[dict[int, Migration], dict[int, Migration], dict[int, LedgerRow]]:
        ups, downs = _split(self.migrations())
        with self._session() as (conn, _database):
            return ups, downs, read_ledger(conn)

    def info(self) -> list[MigrationStatus]:
        """Each version in the directory or the ledger: applied, pending, changed, missing or dirty.

        Reads only. Raises MigrationSourceError, MalformedMigrationName or DatabaseUnavailable.
        """
        return statuses_of(*self._read())

    def _checked_ledger(
        self, conn: psycopg.Connection[Any], ups: dict[int, Migration]
    ) -> dict[int, LedgerRow]:
        """The ledger, after sqlx's checks: raises the first dirty, missing or changed version."""
        ledger = read_ledger(conn)
        problems = ledger_problems(ups, ledger, self.directory)
        if problems:
            raise problems[0]
        return ledger

    def problems(self) -> list[LedgerProblem]:
        """Every ledger problem (dirty rows, then missing versions, then changed files); reads only."""
        ups, _downs, ledger = self._read()
        return ledger_problems(ups, ledger, self.directory)

    def validate(self) -> None:
        """Raise the first ledger problem, in sqlx's order: DirtyMigration, MissingMigration,
        ChangedMigration. Also MigrationSourceError, MalformedMigrationName, DatabaseUnavailable."""
        problems = self.problems()
        if problems:
            raise problems[0]

    def run(self, target: int | None = None, dry_run: bool = False) -> MigrationReport:
        """Apply every pending migration (up to and including `target`), in version order.

        Raises the validate() errors, MigrationTargetError, MigrationLockTimeout, or MigrationFailed
        for the first migration whose SQL fails (rolled back, no ledger row, nothing after it run).
        """
        ups, _downs = _split(self.migrations())
        if target is not None and target not in ups:
            raise MigrationTargetError(f"migration {target} is not present in {self.directory}")
        with self._session() as (conn, database):
            started = time.perf_counter()
            if dry_run:
                return self._run(conn, database, ups, target, True, 0.0)
            with migration_lock(conn, database, self.lock_timeout_seconds, self.log):
                waited = (time.perf_counter() - started) * 1000
                ensure_ledger(conn)
                return self._run(conn, database, ups, target, False, waited)

    def _run(
        self,
        conn: psycopg.Connection[Any],
        database: str,
        ups: dict[int, Migration],
        target: int | None,
        dry_run: bool,
        waited_ms: float,
    ) -> MigrationReport:
        ledger = self._checked_ledger(conn, ups)
        latest = max(ledger, default=0)
        if target is not None and target < latest:
            raise MigrationTargetError(
                f"migration {target} is older than the latest applied migration {latest}"
            )
        pending = [m for v, m in sorted(ups.items()) if v not in ledger and (target is None or v <= target)]
        self.log(
            f"database {database}: {len(pending)} of {len(ups)} migrations to apply from {self.directory}"
        )
        steps = []
        for migration in pending:
            if migration.version < latest:
                self.log(
                    f"{migration.file} is older than the newest applied migration {latest}; "
                    "applying it out of order, as sqlx does"
                )
            if dry_run:
                self.log(f"would apply {migration.version} {migration.description}")
                steps.append(Step.of(migration))
                continue
            steps.append(self._apply(conn, migration))
        newest = max([latest, *(step.version for step in steps)])
        return MigrationReport("run", database, dry_run, tuple(steps), newest, waited_ms)

    def _execute(self, conn: psycopg.Connection[Any], migration: Migration) -> None:
        # The whole file in one simple-protocol query, as sqlx sends it, so PostgreSQL's
        # statement_position is an offset into the file.
        try:
            conn.execute(migration.sql.encode("utf-8"))
        except psycopg.Error as exc:
            encoding = conn.info.parameter_status("server_encoding") or "UTF8"
            raise migration_failure(migration, exc, redact=self._redact, server_encoding=encoding) from None

    def _apply(self, conn: psycopg.Connection[Any], migration: Migration) -> Step:
        mode = " without a transaction" if migration.no_transaction else ""
        self.log(f"applying {migration.version} {migration.description} ({migration.file}){mode}")
        started = time.perf_counter_ns()
        if migration.no_transaction:
            self._execute(conn, migration)
            record_applied(conn, migration, time.perf_counter_ns() - started)
        else:
            with conn.transaction():
                self._execute(conn, migration)
                record_applied(conn, migration, time.perf_counter_ns() - started)
        duration_ms = (time.perf_counter_ns() - started) / 1e6
        self.log(f"applied {migration.version} {migration.description} in {duration_ms:.1f} ms")
        return Step.of(migration, duration_ms)

    def revert(self, target: int, dry_run: bool = False) -> MigrationReport:
        """Revert every applied version newer than `target` (0: all), newest first, with `.down.sql`.

        Raises MissingDownMigration before touching anything when one has no `.down.sql`, the
        validate() errors, MigrationTargetError, MigrationLockTimeout, or MigrationFailed.
        """
        ups, downs = _split(self.migrations())
        if target != 0 and target not in ups:
            raise MigrationTargetError(f"migration {target} is not present in {self.directory}")
        with self._session() as (conn, database):
            if dry_run:
                return self._revert(conn, database, ups, downs, target, True)
            with migration_lock(conn, database, self.lock_timeout_seconds, self.log):
                return self._revert(conn, database, ups, downs, target, False)

    def _revert(
        self,
        conn: psycopg.Connection[Any],
        database: str,
        ups: dict[int, Migration],
        downs: dict[int, Migration],
        target: int,
        dry_run: bool,
    ) -> MigrationReport:
        ledger = self._checked_ledger(conn, ups)
        latest = max(ledger, default=0)
        if target > latest:
            raise MigrationTargetError(
                f"migration {target} is newer than the latest applied migration {latest}"
            )
        to_revert = sorted((v for v in ledger if v > target), reverse=True)
        lacking = [ups[v].file for v in to_revert if v not in downs]
        if lacking:
            raise MissingDownMigration(
                f"cannot revert {database} to {target}: no .down.sql for {', '.join(lacking)} in "
                f"{self.directory}; nothing was reverted"
            )
        steps = []
        for version in to_revert:
            down = downs[version]
            if dry_run:
                self.log(f"would revert {version} {down.description} with {down.file}")
                steps.append(Step.of(down))
                continue
            self.log(f"reverting {version} {down.description} ({down.file})")
            started = time.perf_counter_ns()
            if down.no_transaction:
                self._execute(conn, down)
                remove_applied(conn, version)
            else:
                with conn.transaction():
                    self._execute(conn, down)
                    remove_applied(conn, version)
            duration_ms = (time.perf_counter_ns() - started) / 1e6
            self.log(f"reverted {version} {down.description} in {duration_ms:.1f} ms")
            steps.append(Step.of(down, duration_ms))
        remaining = max((v for v in ledger if v <= target), default=0)
        return MigrationReport("revert", database, dry_run, tuple(steps), remaining)
