"""Plan mode: the waves a deploy would run and the diff against the last recorded release.

Needs no cluster: it compares the rendered bundle with the bundle of the previous release.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..bundles.model import RenderedBundle
from .inventory import object_key, ref
from .waves import plan_waves


@dataclass(frozen=True)
class PlannedObject:
    ref: str
    wave: str
    change: str  # add | change | same


@dataclass
class DeployPlan:
    environment: str
    digest: str
    previous_digest: str | None
    objects: list[PlannedObject] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    waves: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        counts = {"add": 0, "change": 0, "same": 0}
        for planned in self.objects:
            counts[planned.change] += 1
        return {**counts, "remove": len(self.removed)}

    def table(self) -> str:
        rows = ["| wave | object | change |", "|---|---|---|"]
        rows += [f"| {p.wave} | {p.ref} | {p.change} |" for p in self.objects]
        rows += [f"| prune | {r} | remove |" for r in self.removed]
        return "\n".join(rows)


def plan_deploy(bundle: RenderedBundle, previous: RenderedBundle | None) -> DeployPlan:
    """Waves in order with each object's change relative to `previous` (None: first deploy)."""
    before = {object_key(o.body): o.body for o in previous.objects} if previous else {}
    plan = DeployPlan(bundle.environment, bundle.digest, previous.digest if previous else None)
    for wave, members in plan_waves([o.body for o in bundle.objects]):
        plan.waves.append(wave.name)
        for body in members:
            old = before.get(object_key(body))
            change = "add" if old is None else ("same" if old == body else "change")
            plan.objects.append(PlannedObject(ref(body), wave.name, change))
    current = {object_key(o.body) for o in bundle.objects}
    plan.removed = sorted(ref(body) for key, body in before.items() if key not in current)
    return plan
