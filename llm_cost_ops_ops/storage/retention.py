"""Grandfather-father-son retention: a pure plan over a catalog, and an executor that applies it.

Keeps the newest backup of each of the last N days, M ISO weeks and K months that have backups
(by the manifest's start time in UTC, never the key name), always the newest verified backup and
at least `min_keep` backups.

Scheduled backups are the chain retention keeps; a backup taken by hand never pushes one out. Each
of the last N days keeps both its newest scheduled backup and its newest manual one, and a week's
or month's keeper is its newest scheduled backup (the newest of any kind only where the period has
no scheduled one). So a manual backup on the day of the nightly one deletes nothing it would not
have deleted anyway, and every deletion is named in the plan.

Backups whose manifest cannot be read, or whose objects are missing, are never deleted here: that
needs a person. Incomplete backups (objects without a manifest) and
pending multipart uploads are cleaned once older than `incomplete_after`, so a backup still
being written is left alone.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass
from datetime import datetime, timedelta

from .base import ObjectStore, PendingUpload
from .catalog import Catalog, CatalogEntry, read_catalog
from .manifest import MANIFEST_SUFFIX, VERIFIED_SUFFIX


@dataclass(frozen=True)
class RetentionPolicy:
    daily: int = 7
    weekly: int = 4
    monthly: int = 12
    min_keep: int = 3
    incomplete_after: timedelta = timedelta(days=1)

    def __post_init__(self) -> None:
        if min(self.daily, self.weekly, self.monthly) < 0 or self.min_keep < 1:
            raise ValueError("retention counts must be >= 0 and min_keep >= 1")


@dataclass(frozen=True)
class RetentionPlan:
    keep: dict[str, tuple[str, ...]]  # backup id -> why it stays
    delete: tuple[str, ...]  # backup ids, oldest first
    clean_incomplete: tuple[str, ...]  # base keys of incomplete backups
    abort_uploads: tuple[PendingUpload, ...]
    untouchable: tuple[str, ...]  # unreadable or damaged: reported, never deleted

    def describe(self) -> list[str]:
        """One line per decision, for dry runs and run logs."""
        lines = [f"keep {bid}: {', '.join(why)}" for bid, why in sorted(self.keep.items())]
        lines += [f"delete {bid}" for bid in self.delete]
        lines += [f"clean incomplete {base}" for base in self.clean_incomplete]
        lines += [f"abort upload {p.key} (started {p.started:%Y-%m-%d %H:%M})" for p in self.abort_uploads]
        lines += [f"leave {what} (needs a person)" for what in self.untouchable]
        return lines


def _periods(
    entries: list[CatalogEntry], count: int, period: Callable[[datetime], Hashable]
) -> list[list[CatalogEntry]]:
    """The entries of each of the `count` most recent periods, newest first (entries are too)."""
    buckets: dict[Hashable, list[CatalogEntry]] = {}
    for entry in entries:
        bucket = period(entry.started_at)
        if bucket not in buckets and len(buckets) >= count:
            break
        buckets.setdefault(bucket, []).append(entry)
    return list(buckets.values())


def _keeper(entries: list[CatalogEntry]) -> CatalogEntry:
    """A period's keeper: its newest scheduled backup, else its newest."""
    return next((e for e in entries if e.manifest.scheduled), entries[0])


def _daily_keepers(entries: list[CatalogEntry], count: int) -> list[CatalogEntry]:
    """Per day: the newest scheduled backup and the newest manual one."""
    chosen = []
    for day in _periods(entries, count, lambda t: t.date()):
        for scheduled in (True, False):
            chosen += [e for e in day if e.manifest.scheduled is scheduled][:1]
    return chosen


def plan_retention(catalog: Catalog, policy: RetentionPolicy, now: datetime) -> RetentionPlan:
    """Decide what to keep and delete. Pure: reads only `catalog`, `policy` and `now`."""
    restorable = sorted((e for e in catalog.entries if not e.missing), key=lambda e: e.started_at)
    newest_first = list(reversed(restorable))
    keep: dict[str, list[str]] = {}

    def mark(entries: list[CatalogEntry], why: Callable[[CatalogEntry], str]) -> None:
        for entry in entries:
            keep.setdefault(entry.backup_id, []).append(why(entry))

    mark(newest_first[: policy.min_keep], lambda e: "minimum count")
    mark(
        _daily_keepers(newest_first, policy.daily),
        lambda e: f"daily {e.started_at:%Y-%m-%d}" + ("" if e.manifest.scheduled else " (manual)"),
    )
    mark(
        [_keeper(week) for week in _periods(newest_first, policy.weekly, lambda t: t.isocalendar()[:2])],
        lambda e: "weekly {}-W{:02d}".format(*e.started_at.isocalendar()[:2]),
    )
    mark(
        [_keeper(month) for month in _periods(newest_first, policy.monthly, lambda t: (t.year, t.month))],
        lambda e: f"monthly {e.started_at:%Y-%m}",
    )
    verified = [e for e in newest_first if e.verified is not None][:1]
    mark(verified, lambda e: "newest verified")

    cutoff = now - policy.incomplete_after
    return RetentionPlan(
        keep={bid: tuple(why) for bid, why in keep.items()},
        delete=tuple(e.backup_id for e in restorable if e.backup_id not in keep),
        clean_incomplete=tuple(sorted(i.base for i in catalog.incomplete if i.last_modified < cutoff)),
        abort_uploads=tuple(p for p in catalog.pending if p.started < cutoff),
        untouchable=tuple(
            [f"{bad.base} ({bad.why})" for bad in catalog.unreadable]
            + [f"{e.backup_id} (missing {', '.join(e.missing)})" for e in catalog.entries if e.missing]
        ),
    )


@dataclass(frozen=True)
class RetentionOutcome:
    dry_run: bool
    deleted_backups: tuple[str, ...]
    deleted_objects: int
    cleaned_incomplete: tuple[str, ...]
    aborted_uploads: int
    kept: int


def run_retention(
    store: ObjectStore, env: str, policy: RetentionPolicy, now: datetime, *, dry_run: bool = False
) -> tuple[RetentionPlan, RetentionOutcome]:
    """Read the catalog, plan, apply. A store that cannot be listed or read raises StorageError
    before anything is deleted."""
    catalog = read_catalog(store, env)
    plan = plan_retention(catalog, policy, now)
    return plan, apply_retention(store, catalog, plan, dry_run=dry_run)


def apply_retention(
    store: ObjectStore, catalog: Catalog, plan: RetentionPlan, *, dry_run: bool = False
) -> RetentionOutcome:
    """Carry out `plan` (nothing when `dry_run`). A backup's manifest goes first, so a backup cut
    short by a failure here is incomplete, never offered for restore, and cleaned next time.
    Raises StorageError on the first failure; what was already deleted stays deleted."""
    by_id = {e.backup_id: e for e in catalog.entries}
    incomplete = {i.base: i for i in catalog.incomplete}
    objects = 0
    if not dry_run:
        for backup_id in plan.delete:
            entry = by_id[backup_id]
            first = [entry.base + MANIFEST_SUFFIX, entry.base + VERIFIED_SUFFIX]
            keys = [k for k in first if any(o.key == k for o in entry.objects)]
            keys += sorted(o.key for o in entry.objects if o.key not in first)
            for key in keys:
                store.delete(key)
                objects += 1
        for base in plan.clean_incomplete:
            for obj in incomplete[base].objects:
                store.delete(obj.key)
                objects += 1
        for pending in plan.abort_uploads:
            store.abort_pending(pending)
    return RetentionOutcome(
        dry_run=dry_run,
        deleted_backups=plan.delete,
        deleted_objects=objects,
        cleaned_incomplete=plan.clean_incomplete,
        aborted_uploads=len(plan.abort_uploads),
        kept=len(plan.keep),
    )
