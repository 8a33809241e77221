"""The platform schema (migrations/) applied to an empty database: the runner against `psql -f`.

Ours: `Migrator.run()` — connect, take sqlx's advisory lock, create `_sqlx_migrations`, read and
hash every file, apply each migration in its own transaction with its ledger row (the
`-- no-transaction` ones on the bare connection). Baseline, in the same run: one `psql -f` of the
same up files in version order (no lock, no ledger, no transactions). psql's own start and
connection (`psql -c 'SELECT 1'`) is measured in the same rounds and taken off the baseline before
the overhead is computed, so the headline compares the runner's whole cost with psql's SQL time
alone (the conservative reading: the raw difference is printed too, and is smaller). Rounds are
interleaved, each into a fresh database, and medians are reported.
$LLM_COST_OPS_OPS_TEST_DSN selects the server; without it a throwaway one is started.
A contestant that cannot run is named with the reason and the benchmark exits non-zero.
The headline figure is the last line.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import time
import uuid
from pathlib import Path

import psycopg
from psycopg import sql

from benchmarks.contestants import executable, require
from llm_cost_ops_ops.postgres.migrator import Migrator
from llm_cost_ops_ops.postgres.source import default_migrations_dir, load_migrations
from tests.postgres_server import DSN_ENV, ThrowawayPostgres, pg_bindir

ROUNDS = 9


def psql_binary() -> str:
    found = shutil.which("psql") or require(
        "psql -f (the baseline)", lambda: str(pg_bindir() / "psql"), RuntimeError
    )
    return executable("psql -f (the baseline)", found, "install postgresql-client")


def create_database(admin: str) -> tuple[str, str]:
    name = f"bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return name, admin.rsplit("/", 1)[0] + f"/{name}"


def drop_database(admin: str, name: str) -> None:
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def with_fresh_database(admin: str, apply) -> float:
    name, dsn = create_database(admin)
    try:
        started = time.perf_counter()
        apply(dsn)
        return time.perf_counter() - started
    finally:
        drop_database(admin, name)


def psql_files(psql: str, files: list[Path]):
    def apply(dsn: str) -> None:
        args = [a for f in files for a in ("-f", str(f))]
        subprocess.run(
            [psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", dsn, *args], check=True, capture_output=True
        )

    return apply


def runner(dsn: str) -> None:
    Migrator(dsn).run()


def measure(admin: str, psql: str) -> None:
    migrations = [m for m in load_migrations(default_migrations_dir()) if not m.is_down]
    files = [m.path for m in migrations]
    baseline_apply = psql_files(psql, files)
    with_fresh_database(admin, runner)  # warm: imports, first connection, catalog caches
    ours, baseline, floor = [], [], []
    for round_ in range(ROUNDS):  # interleaved, alternating who goes first
        pair = [(ours, runner), (baseline, baseline_apply)]
        for sink, apply in pair if round_ % 2 == 0 else reversed(pair):
            sink.append(with_fresh_database(admin, apply))
        started = time.perf_counter()
        subprocess.run([psql, "-X", "-q", "-d", admin, "-c", "SELECT 1"], check=True, capture_output=True)
        floor.append(time.perf_counter() - started)
    name, dsn = create_database(admin)
    try:
        Migrator(dsn).run()
        noop = []
        for _ in range(ROUNDS):
            started = time.perf_counter()
            Migrator(dsn).run()
            noop.append(time.perf_counter() - started)
    finally:
        drop_database(admin, name)
    ours_ms, baseline_ms = statistics.median(ours) * 1000, statistics.median(baseline) * 1000
    floor_ms = statistics.median(floor) * 1000
    count = len(migrations)
    no_tx = sum(m.no_transaction for m in migrations)
    print(f"migrations: {count} ({no_tx} without a transaction), rounds: {ROUNDS} (median)")
    print(f"psql -f of the same files (baseline): {baseline_ms:.1f} ms")
    print(f"  of which psql's start and connection (psql -c 'SELECT 1'): {floor_ms:.1f} ms")
    print(f"runner (lock, ledger, checksums, a transaction per migration): {ours_ms:.1f} ms")
    print(f"runner on the applied schema (no-op): {statistics.median(noop) * 1000:.1f} ms")
    print(f"raw difference per migration (runner - psql -f): {(ours_ms - baseline_ms) / count:.2f} ms")
    print(f"runner overhead per migration ms: {(ours_ms - (baseline_ms - floor_ms)) / count:.2f}")


def main() -> None:
    psql = psql_binary()
    if os.environ.get(DSN_ENV):
        measure(os.environ[DSN_ENV], psql)
        return
    server = require(
        "a PostgreSQL server",
        lambda: ThrowawayPostgres().start(),
        RuntimeError,
        subprocess.CalledProcessError,
    )
    try:
        measure(server.dsn, psql)
    finally:
        server.stop()


if __name__ == "__main__":
    main()
