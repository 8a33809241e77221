"""What a deploy did, object by object and wave by wave."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

WRITE_ACTIONS = frozenset({"created", "configured", "adopted", "pruned"})


@dataclass(frozen=True)
class ObjectOutcome:
    ref: str
    wave: str
    action: str  # created | configured | adopted | unchanged | pruned | skipped, or would-* in a dry run
    detail: str = ""


@dataclass(frozen=True)
class Observation:
    """One object as the deploy left it: the body it sent, what the server said the object would
    be (its dry-run, or the apply's response) and the live object (the apply's response once written)."""

    sent: dict[str, Any]
    wanted: dict[str, Any]
    live: dict[str, Any]


@dataclass
class WaveResult:
    name: str
    seconds: float = 0.0
    outcomes: list[ObjectOutcome] = field(default_factory=list)
    note: str = ""


@dataclass
class DeployResult:
    environment: str
    digest: str
    dry_run: bool
    waves: list[WaveResult] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    hooks: dict[str, dict] = field(default_factory=dict)
    # Every object the deploy planned (by object_key), for the drift check of the same run. Empty
    # when the deploy cannot vouch for its objects' state (a dry run, an adoption).
    observed: dict[tuple[str, str, str, str], Observation] = field(default_factory=dict, repr=False)

    def outcomes(self) -> list[ObjectOutcome]:
        return [o for wave in self.waves for o in wave.outcomes]

    def counts(self) -> dict[str, int]:
        return dict(sorted(Counter(o.action for o in self.outcomes()).items()))

    @property
    def writes(self) -> int:
        return sum(1 for o in self.outcomes() if o.action in WRITE_ACTIONS)

    def table(self) -> str:
        """A markdown table of every object's outcome, for the Dagster UI."""
        rows = ["| wave | object | outcome | detail |", "|---|---|---|---|"]
        rows += [f"| {o.wave} | {o.ref} | {o.action} | {o.detail} |" for o in self.outcomes()]
        return "\n".join(rows)
