"""Whether a rollback may go back to a release older than the database schema.

The ledger records the migrations each release applied. A rollback target whose newest recorded
migration is older than the newest the database has seen would run code against a schema it does
not know; it is refused unless the environment allows reverting and every migration applied since
the target has a down migration.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from .ledger import Release


def migration_version(name: str) -> int:
    """The sqlx version of a recorded migration (`20250115000001_create_usage` -> 20250115000001)."""
    head = str(name).split("_", 1)[0].split(".", 1)[0]
    return int(head) if head.isdigit() else 0


def _newest(migrations: Iterable[str]) -> int:
    return max((migration_version(m) for m in migrations), default=0)


@dataclass(frozen=True)
class SchemaVerdict:
    allowed: bool
    reason: str
    schema_version: int = 0
    target_version: int = 0
    to_revert: list[int] = field(default_factory=list)


def check_rollback_schema(
    releases: list[Release], target: Release, *, allow_revert: bool, has_down: Callable[[int], bool]
) -> SchemaVerdict:
    """Allow or refuse rolling back to `target` given every release in the ledger."""
    schema = _newest(m for r in releases for m in r.migrations)
    at_target = _newest(m for r in releases if r.revision <= target.revision for m in r.migrations)
    if schema <= at_target:
        return SchemaVerdict(True, f"r{target.revision} knows the current schema", schema, at_target)
    newer = sorted(
        {migration_version(m) for r in releases if r.revision > target.revision for m in r.migrations} - {0}
    )
    newer = [v for v in newer if v > at_target]
    where = f"r{target.revision} expects schema {at_target or 'none'}, the database is at {schema}"
    if not allow_revert:
        return SchemaVerdict(
            False,
            f"rollback refused: {where} (migrations since: {', '.join(map(str, newer))}); set "
            "operations.allow_revert_migrations and provide down migrations to allow it",
            schema,
            at_target,
            newer,
        )
    missing = [v for v in newer if not has_down(v)]
    if missing:
        return SchemaVerdict(
            False,
            f"rollback refused: {where}; no down migration for {', '.join(map(str, missing))}",
            schema,
            at_target,
            newer,
        )
    return SchemaVerdict(
        True, f"{where}; {len(newer)} migration(s) have down migrations", schema, at_target, newer
    )


def down_migrations_in(directory: Path) -> Callable[[int], bool]:
    """`has_down` for a sqlx migrations directory: `<version>_<name>.down.sql` exists."""
    found = {migration_version(p.name) for p in directory.glob("*.down.sql")} if directory.is_dir() else set()
    return lambda version: version in found
