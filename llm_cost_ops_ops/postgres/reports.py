"""What the runner reports: the state of each version (`info`) and what a run or revert did."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from .ledger import LedgerRow
from .source import Migration

State = Literal["applied", "pending", "changed", "missing", "dirty"]


@dataclass(frozen=True)
class MigrationStatus:
    version: int
    description: str
    state: State
    file: str  # "" for a version that is only in the ledger
    installed_on: datetime | None
    execution_time_ns: int | None
    reversible: bool
    no_transaction: bool


@dataclass(frozen=True)
class Step:
    version: int
    description: str
    file: str
    duration_ms: float  # 0 in a dry run
    no_transaction: bool

    @classmethod
    def of(cls, migration: Migration, duration_ms: float = 0.0) -> Step:
        return cls(
            migration.version, migration.description, migration.file, duration_ms, migration.no_transaction
        )


@dataclass(frozen=True)
class MigrationReport:
    operation: Literal["run", "revert"]
    database: str
    dry_run: bool
    steps: tuple[Step, ...]
    latest_version: int  # newest applied version afterwards (0: none)
    lock_wait_ms: float = 0.0

    @property
    def versions(self) -> list[int]:
        return [step.version for step in self.steps]

    def summary(self) -> str:
        verb = "applied" if self.operation == "run" else "reverted"
        if self.dry_run:
            verb = f"would be {verb}"
        total = sum(step.duration_ms for step in self.steps)
        return (
            f"database {self.database}: {len(self.steps)} migrations {verb} in {total:.1f} ms; "
            f"latest applied version {self.latest_version or 'none'}"
        )


def statuses_of(
    ups: dict[int, Migration], downs: dict[int, Migration], ledger: dict[int, LedgerRow]
) -> list[MigrationStatus]:
    """Each version in the directory or the ledger, with its state."""
    statuses = []
    for version in sorted(set(ups) | set(ledger)):
        migration, row = ups.get(version), ledger.get(version)
        state: State = "pending"
        if row is not None:
            state = "applied"
            if not row.success:
                state = "dirty"
            elif migration is None:
                state = "missing"
            elif migration.checksum != row.checksum:
                state = "changed"
        statuses.append(
            MigrationStatus(
                version=version,
                description=migration.description if migration else row.description if row else "",
                state=state,
                file=migration.file if migration else "",
                installed_on=row.installed_on if row else None,
                execution_time_ns=row.execution_time if row else None,
                reversible=version in downs,
                no_transaction=bool(migration and migration.no_transaction),
            )
        )
    return statuses
