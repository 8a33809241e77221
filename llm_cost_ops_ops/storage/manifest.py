"""The backup layout in a store and the JSON manifest that commits a backup.

`<env>/<YYYY>/<MM>/<DD>/<timestamp>-<run id>` is a backup's base key; beside it lie
`.dump.zst[.enc]`, `.globals.sql.zst[.enc]`, `.manifest.json` (written last: the commit marker)
and, once a restore drill has passed, `.verified.json`. A base without its manifest is an
incomplete backup and is never offered for restore.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pydantic

from .errors import ManifestInvalid

FORMAT = 1
MANIFEST_SUFFIX = ".manifest.json"
VERIFIED_SUFFIX = ".verified.json"
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")


@dataclass(frozen=True)
class BackupLayout:
    """Where one backup's objects live, relative to the store's prefix."""

    env: str
    backup_id: str
    started: datetime

    @classmethod
    def for_run(cls, env: str, started: datetime, run_id: str) -> BackupLayout:
        started = started.astimezone(UTC)
        run = _UNSAFE.sub("-", run_id).strip("-") or "run"
        return cls(env, f"{started:%Y%m%dT%H%M%SZ}-{run}", started)

    @property
    def base(self) -> str:
        return f"{self.env}/{self.started:%Y/%m/%d}/{self.backup_id}"

    def dump_key(self, encrypted: bool) -> str:
        return f"{self.base}.dump.zst{'.enc' if encrypted else ''}"

    def globals_key(self, encrypted: bool) -> str:
        return f"{self.base}.globals.sql.zst{'.enc' if encrypted else ''}"

    @property
    def manifest_key(self) -> str:
        return self.base + MANIFEST_SUFFIX


def base_of(key: str) -> str:
    """The backup base key an object belongs to (its key up to the first dot of its file name)."""
    directory, _, name = key.rpartition("/")
    stem = name.split(".", 1)[0]
    return f"{directory}/{stem}" if directory else stem


class _Strict(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid", frozen=True)


class StoredFile(_Strict):
    key: str
    raw_bytes: int
    stored_bytes: int
    sha256_raw: str
    sha256_stored: str


class EncryptionInfo(_Strict):
    algorithm: str
    key_fingerprint: str


class BackupManifest(_Strict):
    """What a backup is, as recorded when it completed. Never holds a secret."""

    format: int = FORMAT
    backup_id: str
    run_id: str
    env: str
    database: str
    source: str
    server_version: str
    pg_dump_version: str
    started_at: datetime
    finished_at: datetime
    dump: StoredFile
    globals: StoredFile | None
    # Whether the globals carry role password hashes (only ever in an encrypted backup).
    globals_role_passwords: bool = False
    compression: dict[str, Any]
    encryption: EncryptionInfo | None
    tables: dict[str, int]
    row_counts_consistent: bool
    migration_version: int | None
    # What the backup left out and why (globals a role without superuser cannot read).
    warnings: tuple[str, ...] = ()
    # Taken by a schedule (the chain retention keeps) or by hand; manifests before this field
    # existed were all nightly backups.
    scheduled: bool = True

    @property
    def stored_bytes(self) -> int:
        return self.dump.stored_bytes + (self.globals.stored_bytes if self.globals else 0)

    def to_json(self) -> bytes:
        return self.model_dump_json(indent=2).encode()

    @classmethod
    def from_json(cls, data: bytes, where: str) -> BackupManifest:
        """Raises ManifestInvalid naming `where` and the first bad field."""
        return _parse(cls, data, where)


class VerifiedMarker(_Strict):
    """Written beside a manifest when a restore drill of that backup passed."""

    backup_id: str
    verified_at: datetime
    drill_run_id: str
    checks: dict[str, bool]
    restore_seconds: float

    def to_json(self) -> bytes:
        return self.model_dump_json(indent=2).encode()

    @classmethod
    def from_json(cls, data: bytes, where: str) -> VerifiedMarker:
        return _parse(cls, data, where)


def _parse(model: type[Any], data: bytes, where: str) -> Any:
    try:
        return model.model_validate_json(data)
    except pydantic.ValidationError as exc:
        first = exc.errors()[0]
        path = ".".join(str(p) for p in first["loc"]) or "(top level)"
        raise ManifestInvalid(f"{where}: {path}: {first['msg']}") from None
