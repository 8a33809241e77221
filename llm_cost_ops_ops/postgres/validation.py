"""The ledger checked against the directory, with sqlx's meaning and wording.

- a row with success = false: "migration V is partially applied; fix and remove row from
  `_sqlx_migrations` table" (sqlx's Dirty);
- an applied version with no file: "migration V was previously applied but is missing in the
  resolved migrations" (VersionMissing);
- an applied file whose SHA-384 differs from the row's: "migration V was previously applied but
  has been modified" (VersionMismatch).
Pending versions are not problems. Problems come in sqlx's order: dirty, missing, changed.
"""

from __future__ import annotations

from pathlib import Path

from .errors import ChangedMigration, DirtyMigration, LedgerProblem, MissingMigration
from .ledger import LEDGER_TABLE, LedgerRow
from .source import Migration


def _short(checksum: bytes) -> str:
    return checksum.hex()[:16]


def ledger_problems(
    ups: dict[int, Migration], ledger: dict[int, LedgerRow], directory: Path
) -> list[LedgerProblem]:
    """Every disagreement between the applied rows and the up migrations in `directory`."""
    dirty: list[LedgerProblem] = []
    missing: list[LedgerProblem] = []
    changed: list[LedgerProblem] = []
    for version, row in sorted(ledger.items()):
        migration = ups.get(version)
        file = migration.file if migration else ""
        if not row.success:
            dirty.append(
                DirtyMigration(
                    f"migration {version} is partially applied; fix and remove row from "
                    f"`{LEDGER_TABLE}` table ({file or row.description})",
                    version,
                    file,
                )
            )
        elif migration is None:
            missing.append(
                MissingMigration(
                    f"migration {version} was previously applied but is missing in the resolved "
                    f"migrations ({row.description}: no {version}_*.sql file in {directory})",
                    version,
                )
            )
        elif migration.checksum != row.checksum:
            changed.append(
                ChangedMigration(
                    f"migration {version} was previously applied but has been modified ({file}: "
                    f"checksum {_short(row.checksum)}... in {LEDGER_TABLE}, {_short(migration.checksum)}... "
                    "on disk; restore the file and put the change in a new migration)",
                    version,
                    file,
                )
            )
    return [*dirty, *missing, *changed]
