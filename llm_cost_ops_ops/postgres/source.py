"""A directory of sqlx migrations, read the way sqlx's resolver reads it.

Files are `<version>_<description>.sql` (simple) or `.up.sql` / `.down.sql` pairs (reversible).
As in sqlx (sqlx-core/src/migrate/source.rs):
- the version is the integer before the first `_`; the description is the rest with the suffix
  trimmed (repeatedly, like Rust's `trim_end_matches`) and every `_` replaced by a space;
- the checksum is SHA-384 of the file's exact bytes (sqlx hashes the file read as UTF-8 text, which
  is the same bytes: nothing is normalised, a BOM or CRLF line endings are part of the checksum);
- a file whose text starts with `-- no-transaction` runs outside a transaction;
- files that do not end in `.sql`, and directories, are ignored.
Stricter than sqlx, so a typo cannot silently drop a migration: a `.sql` file without `_`, a
version that is not a positive decimal integer, an empty description, two up files for one version
and a `.down.sql` with no up file are refused (MalformedMigrationName).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ..paths import project_root
from .errors import MalformedMigrationName, MigrationSourceError

Kind = Literal["simple", "up", "down"]
NO_TRANSACTION = "-- no-transaction"
MAX_VERSION = 2**63 - 1  # the ledger's version column is a BIGINT
_SUFFIXES: tuple[tuple[str, Kind], ...] = ((".up.sql", "up"), (".down.sql", "down"), (".sql", "simple"))
_VERSION = re.compile(r"[0-9]+")


def default_migrations_dir() -> Path:
    """The platform's schema: `migrations/` at the project root."""
    return project_root() / "migrations"


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    kind: Kind
    path: Path
    sql: str
    checksum: bytes
    no_transaction: bool

    @property
    def file(self) -> str:
        return self.path.name

    @property
    def is_down(self) -> bool:
        return self.kind == "down"


def parse_file_name(name: str) -> tuple[int, str, Kind] | None:
    """(version, description, kind) of a migration file name; None for a file sqlx ignores.

    Raises MalformedMigrationName for a `.sql` file that is not a valid migration name.
    """
    if not name.endswith(".sql"):
        return None
    version_text, sep, rest = name.partition("_")
    if not sep:
        raise MalformedMigrationName(f"{name}: expected <version>_<description>.sql (no `_` in the name)")
    if not _VERSION.fullmatch(version_text) or not 0 < int(version_text) <= MAX_VERSION:
        raise MalformedMigrationName(
            f"{name}: the version {version_text!r} is not a positive integer such as 20250115000001"
        )
    kind: Kind = next(k for suffix, k in _SUFFIXES if rest.endswith(suffix))
    suffix = next(s for s, k in _SUFFIXES if k == kind)
    description = rest
    while description.endswith(suffix):
        description = description[: -len(suffix)]
    if not description:
        raise MalformedMigrationName(f"{name}: the description after `{version_text}_` is empty")
    return int(version_text), description.replace("_", " "), kind


def read_migration(path: Path) -> Migration | None:
    """One migration file, or None when sqlx would ignore it.

    Raises MalformedMigrationName, or MigrationSourceError when it cannot be read as UTF-8.
    """
    parsed = parse_file_name(path.name)
    if parsed is None:
        return None
    version, description, kind = parsed
    try:
        raw = path.read_bytes()
        sql = raw.decode("utf-8")
    except OSError as exc:
        raise MigrationSourceError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise MigrationSourceError(f"{path}: not UTF-8 at byte {exc.start}") from exc
    return Migration(
        version=version,
        description=description,
        kind=kind,
        path=path,
        sql=sql,
        checksum=hashlib.sha384(raw).digest(),
        no_transaction=sql.startswith(NO_TRANSACTION),
    )


def load_migrations(directory: Path | str | None = None) -> list[Migration]:
    """Every migration in `directory` (default: the platform's), by version, up before down.

    Raises MigrationSourceError (no such directory, unreadable or non-UTF-8 file) or
    MalformedMigrationName (bad name, duplicate version, `.down.sql` without an up file).
    """
    root = Path(directory) if directory is not None else default_migrations_dir()
    if not root.is_dir():
        raise MigrationSourceError(f"{root}: no such migrations directory")
    found: list[Migration] = []
    for path in sorted(root.iterdir()):
        if path.is_file():
            migration = read_migration(path)
            if migration is not None:
                found.append(migration)
    ups: dict[int, Migration] = {}
    downs: dict[int, Migration] = {}
    for migration in found:
        seen = downs if migration.is_down else ups
        other = seen.get(migration.version)
        if other is not None:
            raise MalformedMigrationName(
                f"{migration.file}: version {migration.version} is also used by {other.file}"
            )
        seen[migration.version] = migration
    for version, down in downs.items():
        if version not in ups:
            raise MalformedMigrationName(f"{down.file}: no up migration for version {version}")
    return sorted(found, key=lambda m: (m.version, m.is_down))
