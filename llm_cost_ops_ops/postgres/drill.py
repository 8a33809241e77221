"""The restore drill: prove the newest backup restores, then mark it verified.

Restores into a scratch database (no owners or grants, so the drill server needs none of the
production roles), compares every table's row count with the manifest, checks the sqlx ledger
(no dirty row, newest version as recorded), that no index is invalid and no serial or identity
sequence lags its column, drops the scratch database whatever happened, and only when every check
passed writes the `.verified.json` marker that makes the backup the default restore candidate.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg import conninfo

from ..storage.base import ObjectStore
from ..storage.catalog import read_catalog
from ..storage.crypto import EncryptionKey
from ..storage.errors import BackupDamaged
from ..storage.manifest import VERIFIED_SUFFIX, BackupManifest, VerifiedMarker
from .backup import utc_now
from .connection import connect
from .contents import invalid_indexes, lagging_sequences, ledger_state, table_row_counts
from .restore import choose_backup, drop_database, restore_backup


@dataclass(frozen=True)
class DrillCheck:
    name: str
    passed: bool
    detail: str


@dataclass(frozen=True)
class DrillResult:
    backup_id: str
    scratch_database: str
    checks: tuple[DrillCheck, ...]
    download_seconds: float
    restore_seconds: float
    check_seconds: float
    total_seconds: float
    marker_url: str | None  # set when the backup was marked verified

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    def metadata(self) -> dict[str, str | float | bool]:
        """Flat values for Dagster metadata: verdict, timings, and one entry per check."""
        checks = {f"check {c.name}": f"{'ok' if c.passed else 'FAILED'}: {c.detail}" for c in self.checks}
        return {
            "backup_id": self.backup_id,
            "passed": self.passed,
            "download_seconds": round(self.download_seconds, 3),
            "restore_seconds": round(self.restore_seconds, 3),
            "check_seconds": round(self.check_seconds, 3),
            "total_seconds": round(self.total_seconds, 3),
            "marker_url": self.marker_url or "not verified",
            **checks,
        }

    def summary(self) -> str:
        failed = [f"{c.name}: {c.detail}" for c in self.checks if not c.passed]
        verdict = "passed" if not failed else "FAILED " + "; ".join(failed)
        return f"restore drill of {self.backup_id} {verdict} ({self.total_seconds:.1f}s)"


def _compare_counts(expected: dict[str, int], actual: dict[str, int]) -> DrillCheck:
    wrong = [
        f"{table}: {actual.get(table, 'missing')} rows, manifest {rows}"
        for table, rows in sorted(expected.items())
        if actual.get(table) != rows
    ]
    extra = sorted(set(actual) - set(expected))
    wrong += [f"{table}: not in the manifest" for table in extra]
    detail = "; ".join(wrong[:5]) + (f" (and {len(wrong) - 5} more)" if len(wrong) > 5 else "")
    return DrillCheck(
        "row counts", not wrong, detail or f"{len(expected)} tables, {sum(expected.values())} rows match"
    )


def _check_ledger(conn: Any, manifest: BackupManifest) -> DrillCheck:
    state = ledger_state(conn)
    if manifest.migration_version is None:
        ok = state.latest is None and not state.dirty
        return DrillCheck("migration ledger", ok, "no migrations recorded" if ok else f"found {state}")
    problems = [f"dirty versions {list(state.dirty)}"] if state.dirty else []
    if state.latest != manifest.migration_version:
        problems.append(f"latest version {state.latest}, manifest {manifest.migration_version}")
    return DrillCheck(
        "migration ledger", not problems, "; ".join(problems) or f"at {manifest.migration_version}"
    )


def _checks(scratch_dsn: str, manifest: BackupManifest) -> list[DrillCheck]:
    with connect(scratch_dsn, application_name="llm-cost-ops-ops restore drill") as conn:
        invalid = invalid_indexes(conn)
        lagging = lagging_sequences(conn)
        return [
            _compare_counts(manifest.tables, table_row_counts(conn)),
            _check_ledger(conn, manifest),
            DrillCheck("indexes valid", not invalid, ", ".join(invalid) or "all valid"),
            DrillCheck("sequences ahead of data", not lagging, "; ".join(lagging) or "all ahead"),
        ]


def run_restore_drill(
    store: ObjectStore,
    admin_dsn: str,
    *,
    env: str,
    run_id: str,
    backup_id: str | None = None,
    key: EncryptionKey | None = None,
    jobs: int = 2,
    clock: Callable[[], datetime] = utc_now,
    timer: Callable[[], float] = time.monotonic,
) -> DrillResult:
    """Drill the newest backup of `env` (or `backup_id`) on `admin_dsn`'s server.

    Failed checks are returned (`passed` False, no marker written); a backup that cannot be
    restored at all raises, as restore_backup does (BackupNotFound, ChecksumMismatch,
    EncryptionKeyMissing, RestoreFailed, ...). When the newest backup is damaged (its manifest
    does not parse, objects are missing) the drill raises BackupDamaged naming it rather than
    passing on an older one.
    """
    begun = timer()
    catalog = read_catalog(store, env)
    entry = choose_backup(catalog, backup_id, verified=False)
    damaged = [] if backup_id else catalog.damage_since(entry)
    if damaged:
        raise BackupDamaged(
            f"{env}: the newest backup is damaged, so the drill does not pass on the older "
            f"{entry.backup_id}: {'; '.join(damaged)}; repair or remove it (retention leaves it to a "
            f"person), then run backup_{env} and restore_drill_{env}"
        )
    scratch = f"drill_{env}_{uuid.uuid4().hex[:10]}".lower().replace("-", "_")
    restored = restore_backup(
        store,
        admin_dsn,
        env=env,
        backup_id=entry.backup_id,
        target_database=scratch,
        key=key,
        jobs=jobs,
        keep_owners=False,
        catalog=catalog,
        timer=timer,
    )
    checked = timer()
    try:
        checks = _checks(conninfo.make_conninfo(admin_dsn, dbname=scratch), entry.manifest)
    finally:
        drop_database(admin_dsn, scratch)
    check_seconds = timer() - checked
    marker_url = None
    if all(c.passed for c in checks):
        marker = VerifiedMarker(
            backup_id=entry.backup_id,
            verified_at=clock(),
            drill_run_id=run_id,
            checks={c.name: c.passed for c in checks},
            restore_seconds=round(restored.restore_seconds, 3),
        )
        store.put_bytes(entry.base + VERIFIED_SUFFIX, marker.to_json())
        marker_url = store.url(entry.base + VERIFIED_SUFFIX)
    return DrillResult(
        backup_id=entry.backup_id,
        scratch_database=scratch,
        checks=tuple(checks),
        download_seconds=restored.download_seconds,
        restore_seconds=restored.restore_seconds,
        check_seconds=check_seconds,
        total_seconds=timer() - begun,
        marker_url=marker_url,
    )
