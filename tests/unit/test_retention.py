"""Retention planning (pure) on synthetic histories, and its executor on a local-directory store.

Cases:
- a year of daily backups under the prod policy 7/4/12 keeps exactly the last 7 days, the newest of
  the last 4 ISO weeks and of the last 12 months (20 backups), deleting the rest oldest first
- order comes from the manifest's start time, not the key name (ids that sort backwards)
- several backups a day: the daily slot keeps the newest of that day
- a manual backup on the day of the nightly one: both stay for the day; weeks and months keep
  their scheduled backup over a newer manual one, so a manual backup never pushes the chain out
- the newest verified backup is kept even when no slot covers it; min_keep holds with 0/0/0
- incomplete backups and multipart uploads are cleaned only once older than a day
- unreadable or damaged backups are never deleted; an empty catalog plans nothing
- dry run deletes nothing; a run deletes each backup's manifest first, so a run cut short by a
  storage failure leaves incomplete backups (never offered), never a manifest without its dump
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from llm_cost_ops_ops.storage.base import PendingUpload, StoredObject
from llm_cost_ops_ops.storage.catalog import (
    Catalog,
    CatalogEntry,
    IncompleteBackup,
    UnreadableBackup,
    read_catalog,
)
from llm_cost_ops_ops.storage.errors import StorageUnavailable
from llm_cost_ops_ops.storage.local import LocalDirectoryStore
from llm_cost_ops_ops.storage.manifest import BackupLayout, BackupManifest, StoredFile, VerifiedMarker
from llm_cost_ops_ops.storage.retention import RetentionPolicy, apply_retention, plan_retention

pytestmark = pytest.mark.unit
PROD = RetentionPolicy(daily=7, weekly=4, monthly=12, min_keep=3)
NOW = datetime(2025, 12, 31, 3, 0, tzinfo=UTC)


def manifest(
    started: datetime, backup_id: str, env: str = "prod", *, scheduled: bool = True
) -> BackupManifest:
    layout = BackupLayout(env, backup_id, started)
    dump = StoredFile(
        key=layout.dump_key(False), raw_bytes=10, stored_bytes=5, sha256_raw="r", sha256_stored="s"
    )
    return BackupManifest(
        backup_id=backup_id, run_id=backup_id, env=env, database="llm_cost_ops", source="test",
        server_version="16.4", pg_dump_version="16.4", started_at=started,
        finished_at=started + timedelta(minutes=5), dump=dump, globals=None,
        compression={"algorithm": "zstd"}, encryption=None, tables={"public.usage_records": 1},
        row_counts_consistent=True, migration_version=None, scheduled=scheduled,
    )  # fmt: skip


def entry(
    started: datetime,
    backup_id: str = "",
    *,
    verified: bool = False,
    damaged: bool = False,
    scheduled: bool = True,
) -> CatalogEntry:
    backup_id = backup_id or f"{started:%Y%m%dT%H%M%SZ}-run"
    m = manifest(started, backup_id, scheduled=scheduled)
    layout = BackupLayout("prod", backup_id, started)
    objects = [StoredObject(layout.manifest_key, 100, m.finished_at)]
    if not damaged:
        objects.append(StoredObject(m.dump.key, 5, m.finished_at))
    marker = VerifiedMarker(
        backup_id=backup_id, verified_at=started, drill_run_id="d", checks={}, restore_seconds=1.0
    )
    return CatalogEntry(layout.base, m, marker if verified else None, tuple(objects))


def year(naming: str = "timestamp") -> list[CatalogEntry]:
    days = [datetime(2025, 1, 1, 2, 0, tzinfo=UTC) + timedelta(days=n) for n in range(365)]
    if naming == "reversed":  # ids whose name order is the opposite of time order
        return [entry(d, f"{999 - i:03d}-manual") for i, d in enumerate(days)]
    return [entry(d) for d in days]


def kept_days(plan_keep: dict[str, tuple[str, ...]], entries: list[CatalogEntry]) -> set[date]:
    by_id = {e.backup_id: e for e in entries}
    return {by_id[b].started_at.date() for b in plan_keep}


@pytest.mark.parametrize("naming", ["timestamp", "reversed"])
def test_a_year_under_the_prod_policy(naming: str) -> None:
    entries = year(naming)
    plan = plan_retention(Catalog("prod", tuple(sorted(entries, key=lambda e: e.backup_id))), PROD, NOW)
    daily = {date(2025, 12, d) for d in range(25, 32)}
    weekly = {date(2025, 12, 14), date(2025, 12, 21), date(2025, 12, 28), date(2025, 12, 31)}
    month_ends = {date(2025, m, 1) + timedelta(days=-1) for m in range(2, 13)}  # Jan 31 .. Nov 30
    assert kept_days(plan.keep, entries) == daily | weekly | month_ends | {date(2025, 12, 31)}
    assert len(plan.keep) == 20 and len(plan.delete) == 345
    started = {e.backup_id: e.started_at for e in entries}
    assert [started[b] for b in plan.delete] == sorted(started[b] for b in plan.delete)  # oldest first
    assert "daily 2025-12-31" in plan.keep[entries[-1].backup_id]


def test_newest_of_each_day_fills_the_daily_slot() -> None:
    morning, evening = entry(NOW - timedelta(hours=1)), entry(NOW + timedelta(hours=11))
    older = [entry(NOW - timedelta(days=n)) for n in range(1, 4)]
    plan = plan_retention(
        Catalog("prod", (*older, morning, evening)), RetentionPolicy(3, 0, 0, min_keep=1), NOW
    )
    assert morning.backup_id in plan.delete and evening.backup_id in plan.keep


def test_a_manual_backup_never_pushes_the_nightly_one_out() -> None:
    nightly = [entry(NOW - timedelta(days=n)) for n in range(20, -1, -1)]  # 02:00-ish each day
    manual = entry(NOW + timedelta(hours=9), scheduled=False)  # by hand, the same day
    policy = RetentionPolicy(daily=3, weekly=2, monthly=0, min_keep=1)
    without = plan_retention(Catalog("prod", tuple(nightly)), policy, NOW)
    plan = plan_retention(Catalog("prod", (*nightly, manual)), policy, NOW)

    assert "daily 2025-12-31" in plan.keep[nightly[-1].backup_id]
    assert "daily 2025-12-31 (manual)" in plan.keep[manual.backup_id]
    assert set(plan.delete) == set(without.delete)  # the manual backup deleted nothing more
    this_week = plan.keep[nightly[-1].backup_id]
    assert any(why.startswith("weekly") for why in this_week)  # the chain, not the manual one

    newer = [entry(NOW + timedelta(days=n)) for n in range(1, 4)]
    later = plan_retention(Catalog("prod", (*nightly, manual, *newer)), policy, NOW + timedelta(days=3))
    assert manual.backup_id in later.delete  # a manual backup ages out with its day


def test_newest_verified_and_minimum_count_are_kept() -> None:
    entries = [entry(NOW - timedelta(days=n), verified=(n == 40)) for n in range(60, -1, -1)]
    plan = plan_retention(Catalog("prod", tuple(entries)), RetentionPolicy(3, 0, 0, min_keep=1), NOW)
    verified = next(e for e in entries if e.verified)
    assert plan.keep[verified.backup_id] == ("newest verified",)
    assert len(plan.keep) == 4

    nothing = plan_retention(Catalog("prod", tuple(entries)), RetentionPolicy(0, 0, 0, min_keep=5), NOW)
    assert {e.backup_id for e in entries[-5:]} | {verified.backup_id} == set(nothing.keep)


def test_incomplete_backups_and_uploads_are_cleaned_after_a_day() -> None:
    old = IncompleteBackup(
        "prod/2025/12/29/a", (StoredObject("prod/2025/12/29/a.dump.zst", 9, NOW - timedelta(days=2)),)
    )
    fresh = IncompleteBackup(
        "prod/2025/12/31/b", (StoredObject("prod/2025/12/31/b.dump.zst", 9, NOW - timedelta(hours=2)),)
    )
    stale_upload = PendingUpload("prod/2025/12/29/c.dump.zst", "u1", NOW - timedelta(days=3))
    running_upload = PendingUpload("prod/2025/12/31/d.dump.zst", "u2", NOW - timedelta(minutes=5))
    catalog = Catalog("prod", (), (old, fresh), (), (stale_upload, running_upload))
    plan = plan_retention(catalog, PROD, NOW)
    assert plan.clean_incomplete == ("prod/2025/12/29/a",)
    assert plan.abort_uploads == (stale_upload,)
    assert plan.delete == () and plan.keep == {}


def test_unreadable_and_damaged_backups_are_never_deleted() -> None:
    entries = [entry(NOW - timedelta(days=n)) for n in range(100, 0, -1)]
    damaged = entry(NOW - timedelta(days=200), damaged=True)
    unreadable = UnreadableBackup("prod/2025/01/01/x", "bad JSON", NOW - timedelta(days=300))
    catalog = Catalog("prod", (damaged, *entries), (), (unreadable,))
    plan = plan_retention(catalog, PROD, NOW)
    assert damaged.backup_id not in plan.delete
    assert any("x (bad JSON)" in line for line in plan.untouchable)
    assert any(damaged.backup_id in line for line in plan.untouchable)
    assert plan_retention(Catalog("prod", ()), PROD, NOW).describe() == []


def _write_backup(store: LocalDirectoryStore, started: datetime) -> str:
    layout = BackupLayout.for_run("prod", started, "run")
    m = manifest(started, layout.backup_id)
    store.put_bytes(m.dump.key, b"dump")
    store.put_bytes(layout.manifest_key, m.to_json())
    return layout.backup_id


class _FlakyStore(LocalDirectoryStore):
    def __init__(self, root: Path, fail_after: int):
        super().__init__(root)
        self.deleted: list[str] = []
        self.fail_after = fail_after

    def delete(self, key: str) -> None:
        if len(self.deleted) >= self.fail_after:
            raise StorageUnavailable("injected: the store went away")
        self.deleted.append(key)
        super().delete(key)


def test_executor_dry_run_and_manifest_first(tmp_path: Path) -> None:
    store = _FlakyStore(tmp_path, fail_after=3)
    ids = [_write_backup(store, NOW - timedelta(days=n)) for n in range(6)]
    policy = RetentionPolicy(2, 0, 0, min_keep=1)
    catalog = read_catalog(store, "prod")
    plan = plan_retention(catalog, policy, NOW)
    assert set(plan.delete) == set(ids[2:])

    dry = apply_retention(store, catalog, plan, dry_run=True)
    assert dry.deleted_objects == 0 and store.deleted == [] and dry.deleted_backups == plan.delete

    with pytest.raises(StorageUnavailable):
        apply_retention(store, catalog, plan)
    assert store.deleted[0].endswith(".manifest.json") and store.deleted[2].endswith(".manifest.json")
    after = read_catalog(store, "prod")
    assert {e.backup_id for e in after.entries} == set(ids) - set(plan.delete[:2])
    assert len(after.incomplete) == 1  # cut short between its manifest and its dump: not offered

    store.fail_after = 1000
    later = datetime.now(UTC) + timedelta(days=2)  # the leftover's file time is the real clock's
    outcome = apply_retention(store, after, plan_retention(after, policy, later))
    assert outcome.cleaned_incomplete and {e.backup_id for e in read_catalog(store, "prod").entries} == set(
        ids[:2]
    )
