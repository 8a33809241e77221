"""What an environment's backups in a store are: complete, verified, incomplete, unreadable.

Built from one listing plus a read of each manifest and verification marker. Order is always the
manifest's start time, never the key name. Restore, drills, freshness checks and retention all
read the store through this, so they agree on which backups count. A damaged backup (a manifest
that does not parse, objects it names missing) is never restored, and never silently passed over:
`damage_since` tells the restore drill that the newest backup is damaged.
"""

from __future__ import annotations

from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from .base import ObjectStore, PendingUpload, StoredObject
from .errors import BackupDamaged, BackupNotFound, ManifestInvalid, ObjectMissing
from .manifest import MANIFEST_SUFFIX, VERIFIED_SUFFIX, BackupManifest, VerifiedMarker, base_of


@dataclass(frozen=True)
class CatalogEntry:
    """A committed backup: its manifest, its drill marker if any, and the objects under its base."""

    base: str
    manifest: BackupManifest
    verified: VerifiedMarker | None
    objects: tuple[StoredObject, ...]

    @property
    def backup_id(self) -> str:
        return self.manifest.backup_id

    @property
    def started_at(self) -> datetime:
        return self.manifest.started_at

    @property
    def committed_at(self) -> datetime:
        """When the store got the manifest (the store's clock, as for unreadable backups)."""
        return next(o.modified for o in self.objects if o.key == self.base + MANIFEST_SUFFIX)

    @property
    def missing(self) -> list[str]:
        """Keys the manifest names that are not in the store (a damaged backup)."""
        present = {o.key for o in self.objects}
        wanted = [self.manifest.dump.key] + ([self.manifest.globals.key] if self.manifest.globals else [])
        return [key for key in wanted if key not in present]


@dataclass(frozen=True)
class UnreadableBackup:
    """A base whose manifest is there but cannot be used: the object and the parse error."""

    base: str
    why: str
    committed_at: datetime  # the manifest object's modification time in the store

    @property
    def backup_id(self) -> str:
        return self.base.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class IncompleteBackup:
    """Objects under a base that has no manifest: a failed or still-running backup."""

    base: str
    objects: tuple[StoredObject, ...]

    @property
    def last_modified(self) -> datetime:
        return max(o.modified for o in self.objects)


@dataclass(frozen=True)
class Catalog:
    env: str
    entries: tuple[CatalogEntry, ...]  # oldest first, by manifest start time
    incomplete: tuple[IncompleteBackup, ...] = ()
    unreadable: tuple[UnreadableBackup, ...] = ()  # kept, never restored
    pending: tuple[PendingUpload, ...] = field(default=())

    def newest(self, *, verified: bool = False) -> CatalogEntry | None:
        """The newest restorable backup (all objects present), optionally only a drilled one."""
        for entry in reversed(self.entries):
            if not entry.missing and (entry.verified is not None or not verified):
                return entry
        return None

    def get(self, backup_id: str) -> CatalogEntry:
        """Raises BackupDamaged when that backup's manifest cannot be read, BackupNotFound when no
        backup has that id."""
        for entry in self.entries:
            if entry.backup_id == backup_id:
                return entry
        for bad in self.unreadable:
            if bad.backup_id == backup_id:
                raise BackupDamaged(f"backup {backup_id} of {self.env} is damaged: {bad.why}")
        raise BackupNotFound(f"no backup {backup_id!r} for {self.env}")

    def damage_since(self, entry: CatalogEntry | None) -> list[str]:
        """What is damaged among the backups newer than `entry` (all, when None): unreadable
        manifests (by the store's time) and backups with objects missing, each naming the object."""
        damaged = [
            f"{bad.why}" for bad in self.unreadable if entry is None or bad.committed_at > entry.committed_at
        ]
        damaged += [
            f"backup {e.backup_id}: missing {', '.join(e.missing)}"
            for e in self.entries
            if e.missing and (entry is None or e.started_at > entry.started_at)
        ]
        return damaged


def read_catalog(store: ObjectStore, env: str, *, workers: int = 8) -> Catalog:
    """List `env`'s backups. Raises StorageError when the store cannot be listed or read (a bad
    manifest does not raise: it is reported in `unreadable`)."""
    groups: dict[str, list[StoredObject]] = defaultdict(list)
    for obj in store.list_objects(f"{env}/"):
        groups[base_of(obj.key)].append(obj)
    names = {base: {o.key for o in objs} for base, objs in groups.items()}
    with_manifest = [base for base in groups if base + MANIFEST_SUFFIX in names[base]]

    def load(base: str) -> CatalogEntry | UnreadableBackup:
        try:
            manifest = BackupManifest.from_json(
                store.get_bytes(base + MANIFEST_SUFFIX), store.url(base + MANIFEST_SUFFIX)
            )
            if manifest.env != env:
                where = store.url(base + MANIFEST_SUFFIX)
                return unreadable(base, f"{where}: manifest is for environment {manifest.env!r}, not {env!r}")
            verified = None
            if base + VERIFIED_SUFFIX in names[base]:
                key = base + VERIFIED_SUFFIX
                verified = VerifiedMarker.from_json(store.get_bytes(key), store.url(key))
            return CatalogEntry(base, manifest, verified, tuple(groups[base]))
        except (ManifestInvalid, ObjectMissing) as exc:
            return unreadable(base, str(exc))

    def unreadable(base: str, why: str) -> UnreadableBackup:
        manifest = next(o for o in groups[base] if o.key == base + MANIFEST_SUFFIX)
        return UnreadableBackup(base, why, manifest.modified)

    with ThreadPoolExecutor(max(1, min(workers, len(with_manifest)))) as pool:
        loaded = list(pool.map(load, with_manifest))
    entries = sorted((e for e in loaded if isinstance(e, CatalogEntry)), key=lambda e: e.started_at)
    damaged = tuple(e for e in loaded if isinstance(e, UnreadableBackup))
    incomplete = tuple(
        IncompleteBackup(base, tuple(objs)) for base, objs in groups.items() if base not in with_manifest
    )
    return Catalog(env, tuple(entries), incomplete, damaged, tuple(store.pending_uploads(f"{env}/")))


@dataclass(frozen=True)
class BackupAges:
    """How old the newest backup and the newest drilled backup are (None: there is none)."""

    newest: timedelta | None
    newest_verified: timedelta | None
    newest_id: str | None
    newest_verified_id: str | None


def backup_ages(catalog: Catalog, now: datetime) -> BackupAges:
    """Ages measured from each backup's finish time, for freshness checks and migration gates."""
    newest, verified = catalog.newest(), catalog.newest(verified=True)
    return BackupAges(
        now - newest.manifest.finished_at if newest else None,
        now - verified.manifest.finished_at if verified else None,
        newest.backup_id if newest else None,
        verified.backup_id if verified else None,
    )
