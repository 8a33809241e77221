"""Self-heal: put the environment back to the release that is running, not to the current overlay.

The running release's stored bundle is re-applied with `force`, so this project takes back every
field it owns that another manager changed (the fields drift reported), and fields other managers
added inside the bundle's specs (an env var from `kubectl set env`, see foreign.py) are removed
with a JSON patch. All of it under the environment's Lease. After a rollback the running release is
the rolled-back one, so a heal never rolls the environment forward again.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..bundles.model import load_documents
from .clock import wall_clock
from .engine import DeployOptions
from .errors import ApiError
from .foreign import ForeignField, foreign_additions, removal_patch
from .identity import check_cluster, cluster_identity
from .inventory import labelled, ref
from .lease import EnvironmentLease
from .releases import ReleaseRequest, execute_release

if TYPE_CHECKING:
    from .client import Kube
    from .ledger import Release, ReleaseLedger
    from .outcomes import DeployResult


@dataclass
class HealResult:
    target: Release
    deploy: DeployResult
    release: Release | None
    removed: dict[str, list[str]] = field(default_factory=dict)  # object -> fields removed (by manager)


def execute_heal(
    kube: Kube,
    ledger: ReleaseLedger,
    namespace: str,
    run_id: str,
    options: DeployOptions,
    *,
    lease_seconds: int = 1800,
    clock: Callable[[], float] = time.monotonic,
    sleeper: Callable[[float], None] = time.sleep,
    log: Callable[[str], None] = lambda _: None,
    expected_cluster: str = "",
) -> HealResult:
    """Remove other managers' additions and re-apply the running release with force.

    Raises ReleaseNotFound (no healthy release), LeaseHeld, or what the deploy engine raises.
    """
    target = ledger.last_healthy()
    latest = ledger.latest()
    recorded = latest.cluster if latest is not None else target.cluster
    where = (
        "as configured"
        if expected_cluster
        else f"its release r{latest.revision if latest else target.revision}"
    )
    check_cluster(ledger.environment, cluster_identity(kube), expected_cluster or recorded, where)
    forced = dataclasses.replace(options, force_conflicts=True, prune=False)
    request = ReleaseRequest.for_release(ledger, target, namespace, run_id, forced, "heal", lease_seconds)
    lease = EnvironmentLease(kube, namespace, run_id, lease_seconds, now=wall_clock(clock))
    lease.acquire()
    removed: dict[str, list[str]] = {}
    try:
        for body in load_documents(target.bundle):
            body = labelled(body, ledger.environment)
            meta = body["metadata"]
            if (
                meta.get("namespace", namespace) != namespace
                or kube.resource(body["apiVersion"], body["kind"]) is None
            ):
                continue
            additions = _remove_foreign_fields(kube, body)
            if additions:
                removed[ref(body)] = [f"{a.display} (added by {a.manager})" for a in additions]
                log(f"removed from {ref(body)}: {', '.join(removed[ref(body)])}")
        result, release = execute_release(
            kube, request, clock=clock, sleeper=sleeper, log=log, expected_cluster=expected_cluster
        )
    finally:
        lease.release()
    return HealResult(target, result, release, removed)


# The removal patch tests the resourceVersion it was computed from (list indexes shift when the
# object changes); a controller's status write in between fails that test: read again and retry.
REMOVAL_ATTEMPTS = 4


def _remove_foreign_fields(kube: Kube, body: dict) -> list[ForeignField]:
    """Remove what other managers added to the live object of `body`; the fields removed."""
    meta = body["metadata"]
    namespace = meta.get("namespace", "")
    for attempt in range(REMOVAL_ATTEMPTS):
        live = kube.get(body["apiVersion"], body["kind"], meta["name"], namespace)
        additions = foreign_additions(body, live) if live is not None else []
        if live is None or not additions:
            return []
        try:
            kube.json_patch(
                body["apiVersion"], body["kind"], meta["name"], namespace, removal_patch(live, additions)
            )
            return additions
        except ApiError as exc:
            if exc.status not in (400, 409, 422) or attempt == REMOVAL_ATTEMPTS - 1:
                raise
    return []
