"""Teardown: delete an environment's objects in reverse wave order and wait for them to go.

The inventory is what the bundle names plus what the cluster holds under the inventory labels (one
list per kind, as the deploy engine reads it), so objects an older release left behind go too.
Volume claims and the Namespace hold the data: they are kept unless the run confirms the teardown,
and so are the claims a StatefulSet made from its volumeClaimTemplates (they carry no inventory
label of their own on every cluster, so they are found by name). The release ledger lives in the
namespace: a teardown that deletes the namespace deletes the ledger with it. A protected
environment (prod) is deleted from only by a confirmed teardown that names its verified backup;
otherwise it can only be listed (a dry run).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .clock import iso_seconds, wall_clock
from .errors import TeardownRefused, TeardownTimeout
from .identity import check_cluster, cluster_identity
from .inventory import inventory_selector, object_key, ref
from .lease import EnvironmentLease
from .ledger import Release, ReleaseLedger
from .outcomes import DeployResult, ObjectOutcome, WaveResult
from .wait import WaitTiming
from .waves import PRUNABLE_KINDS, plan_waves

if TYPE_CHECKING:
    from .client import Kube

Key = tuple[str, str, str, str]
# Deleting these loses data or the place it lives in; only a confirmed teardown deletes them.
DATA_KINDS = frozenset({"PersistentVolumeClaim", "Namespace"})


@dataclass(frozen=True)
class TeardownOptions:
    dry_run: bool = True
    confirm: bool = False  # also delete volume claims and the Namespace
    # False where the cluster admin owns the namespace (deploy.manage_namespace): it is never deleted.
    manage_namespace: bool = True
    wait: WaitTiming = field(default_factory=lambda: WaitTiming(300))
    # A protected environment: deleting anything at all needs `confirm` and a verified backup.
    protected: bool = False
    verified_backup: str = ""  # the id of the verified backup the caller checked is recent enough

    def refusal(self, environment: str) -> str | None:
        """Why this teardown may not delete anything, or None when it may (or deletes nothing)."""
        if self.dry_run or not self.protected:
            return None
        if not self.confirm:
            return (
                f"{environment} is protected: a teardown that deletes its workloads needs confirm: "
                f"{environment!r} and a verified backup; without the confirmation it is a dry run only "
                "(dry_run: true lists what would go)"
            )
        if not self.verified_backup:
            return (
                f"{environment} is protected: a teardown needs a recent verified backup; run "
                f"backup_{environment} and restore_drill_{environment} first"
            )
        return None


@dataclass
class TeardownResult(DeployResult):
    namespace_deleted: bool = False

    @property
    def deleted(self) -> int:
        return sum(1 for o in self.outcomes() if o.action == "deleted")


def _claim_prefixes(statefulsets: list[dict[str, Any]]) -> tuple[str, ...]:
    # The controller names a set's claims <template>-<set>-<ordinal>.
    return tuple(
        f"{(t.get('metadata') or {}).get('name')}-{s['metadata']['name']}-"
        for s in statefulsets
        for t in (s.get("spec") or {}).get("volumeClaimTemplates") or []
    )


def inventory(
    kube: Kube, environment: str, namespace: str, bundle: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Every live object of the environment: the bundle's, those carrying its inventory labels, and
    the claims of its StatefulSets. Objects owned by another object go with their owner."""
    kinds = {(b["apiVersion"], b["kind"]) for b in bundle} | set(PRUNABLE_KINDS)
    live: dict[Key, dict[str, Any]] = {}
    for api_version, kind in sorted(kinds):
        if kind == "Namespace" or kube.resource(api_version, kind) is None:
            continue
        for item in kube.list(api_version, kind, namespace, inventory_selector(environment)):
            item.setdefault("apiVersion", api_version)
            item.setdefault("kind", kind)
            live[object_key(item)] = item
    statefulsets = [b for b in bundle if b["kind"] == "StatefulSet"]
    statefulsets += [b for b in live.values() if b["kind"] == "StatefulSet"]
    prefixes = _claim_prefixes(statefulsets)
    if prefixes:
        for claim in kube.list("v1", "PersistentVolumeClaim", namespace):
            if claim["metadata"]["name"].startswith(prefixes):
                claim.update(apiVersion="v1", kind="PersistentVolumeClaim")
                live[object_key(claim)] = claim
    for body in bundle:  # objects that lost their labels, and the Namespace
        if object_key(body) in live or kube.resource(body["apiVersion"], body["kind"]) is None:
            continue
        meta = body["metadata"]
        found = kube.get(body["apiVersion"], body["kind"], meta["name"], meta.get("namespace", ""))
        if found is not None:
            found.update(apiVersion=body["apiVersion"], kind=body["kind"])
            live[object_key(found)] = found
    return [item for item in live.values() if not item["metadata"].get("ownerReferences")]


class Teardown:
    """Deletes one environment's objects from one cluster, wave by wave in reverse."""

    def __init__(
        self,
        kube: Kube,
        environment: str,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleeper: Callable[[float], None] = time.sleep,
        log: Callable[[str], None] = lambda _: None,
    ):
        self.kube, self.environment = kube, environment
        self.clock, self.sleeper, self.log = clock, sleeper, log

    def run(self, objects: list[dict[str, Any]], namespace: str, options: TeardownOptions) -> TeardownResult:
        """Delete (or, in a dry run, list) the inventory in reverse wave order, waiting for each
        wave to go before the next. Raises TeardownTimeout or ApiError."""
        result = TeardownResult(self.environment, "", options.dry_run)
        live = inventory(self.kube, self.environment, namespace, objects)
        for wave, members in reversed(plan_waves(live)):
            if not members:
                continue
            wave_result = WaveResult(wave.name)
            started = self.clock()
            gone: list[dict[str, Any]] = []
            for item in sorted(members, key=ref):
                action, detail = self._delete(item, options)
                wave_result.outcomes.append(ObjectOutcome(ref(item), wave.name, action, detail))
                if action == "deleted":
                    gone.append(item)
            self._wait(gone, options.wait)
            wave_result.seconds = round(self.clock() - started, 3)
            result.waves.append(wave_result)
        result.namespace_deleted = any(
            o.action == "deleted" and o.ref.startswith("Namespace/") for o in result.outcomes()
        )
        return result

    def _delete(self, item: dict[str, Any], options: TeardownOptions) -> tuple[str, str]:
        kind = item["kind"]
        if kind == "Namespace" and not options.manage_namespace:
            return "kept", "the cluster admin owns this namespace (deploy.manage_namespace: false)"
        if kind in DATA_KINDS and not options.confirm:
            return "kept", "holds data: confirm with the environment's name to delete"
        if options.dry_run:
            return "would-delete", ""
        meta = item["metadata"]
        existed = self.kube.delete(item["apiVersion"], kind, meta["name"], meta.get("namespace", ""))
        self.log(f"{self.environment}: {'deleted' if existed else 'already gone:'} {ref(item)}")
        return ("deleted", "") if existed else ("absent", "already gone")

    def _wait(self, items: list[dict[str, Any]], timing: WaitTiming) -> None:
        deadline = self.clock() + timing.deadline_seconds
        pending = list(items)
        while pending:
            pending = [
                i
                for i in pending
                if self.kube.get(
                    i["apiVersion"], i["kind"], i["metadata"]["name"], i["metadata"].get("namespace", "")
                )
                is not None
            ]
            if not pending:
                return
            if self.clock() >= deadline:
                names = ", ".join(ref(i) for i in pending)
                raise TeardownTimeout(
                    f"{self.environment}: still present {timing.deadline_seconds:g}s after deletion: "
                    f"{names}; look for finalizers (kubectl get -o yaml) and run the teardown again"
                )
            self.sleeper(timing.poll_seconds)


def execute_teardown(
    kube: Kube,
    environment: str,
    namespace: str,
    objects: list[dict[str, Any]],
    options: TeardownOptions,
    *,
    run_id: str,
    history: int = 10,
    lease_seconds: int = 1800,
    clock: Callable[[], float] = time.monotonic,
    sleeper: Callable[[float], None] = time.sleep,
    log: Callable[[str], None] = lambda _: None,
    expected_cluster: str = "",
) -> tuple[TeardownResult, Release | None]:
    """Tear the environment down under its Lease and record a release with operation `teardown`.

    A dry run takes no Lease and records nothing. When the namespace is deleted the ledger goes
    with it, so the returned release (revision 0) is recorded nowhere but in the caller's logs.
    Raises TeardownRefused before any request when `options.refusal` says so; TeardownTimeout or
    ApiError, after recording a failed teardown while the ledger exists.
    """
    refusal = options.refusal(environment)
    if refusal:
        raise TeardownRefused(refusal)
    teardown = Teardown(kube, environment, clock=clock, sleeper=sleeper, log=log)
    if options.dry_run:
        return teardown.run(objects, namespace, options), None
    ledger = ReleaseLedger(kube, environment, namespace, history)
    latest = ledger.latest()
    where = "as configured" if expected_cluster else f"its release r{latest.revision if latest else 0}"
    check_cluster(
        environment, cluster_identity(kube), expected_cluster or (latest.cluster if latest else ""), where
    )
    now = wall_clock(clock)
    started = iso_seconds(now())

    def release_of(outcome: str, detail: str) -> Release:
        return Release(
            environment,
            latest.digest if latest else "",
            "",
            [],
            outcome,
            operation="teardown",
            started_at=started,
            finished_at=iso_seconds(now()),
            run_id=run_id,
            detail=detail,
        )

    if kube.get("v1", "Namespace", namespace) is None:
        log(f"{environment}: namespace {namespace} does not exist; nothing to tear down")
        return TeardownResult(environment, "", False), None
    lease = EnvironmentLease(kube, namespace, run_id, lease_seconds, now=now)
    lease.acquire()
    try:
        try:
            result = teardown.run(objects, namespace, options)
        except Exception as exc:
            if kube.get("v1", "Namespace", namespace) is not None:
                ledger.record(release_of("failed", str(exc)[:2000]))
            raise
        release = release_of("torn-down", f"{result.counts()}")
        if result.namespace_deleted:
            log(
                f"{environment}: namespace {namespace} deleted, and the release ledger (Secrets in it) "
                "with it; this run's metadata is the only record of the teardown"
            )
            return result, release
        return result, ledger.record(release)
    finally:
        lease.release()  # a no-op once the namespace (and the Lease in it) is gone
