"""The deploy engine: dry-run the whole bundle, then server-side apply it in waves, wait, prune.

1. Discovery: kinds the cluster does not serve are skipped with a warning when they are custom
   resources (their CRD is not installed), and refuse the deploy when they are built in.
2. The Namespace is created first when absent: namespaced dry-runs need it to exist.
3. Every other object is sent as a server-side dry-run; one rejection and nothing is applied.
4. One list per kind (inventory label selector, in the environment's namespace; cluster-scoped
   objects are read by name) gives the live objects; an object whose dry-run result equals its
   live state is not written.
5. The plan is made once. Before the first write the Lease is taken; only when another deploy took
   it meanwhile is the bundle planned again, under it (at most two dry-runs per object).
6. Waves are applied in order; workload waves wait for health; the migration wave runs its hook.
7. Objects with the inventory labels that left the bundle are pruned; PVCs, Namespaces and Secrets
   only when the run confirms them.
8. What the deploy saw of each object (its dry-run, live state or apply response) is kept in the
   result, so the run's drift check needs no dry-run of its own (drift.drift_after_deploy).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..bundles.quantity import canonical_resources
from .adopt import adopt_ownership, takeover
from .errors import ApiError, DryRunRejected, FieldConflict
from .inventory import inventory_selector, labelled, object_key, ref
from .outcomes import DeployResult, ObjectOutcome, Observation, WaveResult
from .wait import WaitTiming, wait_for_rollout
from .waves import DATABASE, PROTECTED_KINDS, PRUNABLE_KINDS, WORKLOAD_KINDS, Wave, plan_waves, wave_of

if TYPE_CHECKING:
    from .client import Kube

Key = tuple[str, str, str, str]
Hook = Callable[[], dict]
_DRY_RUN_ACTIONS = {"created": "would-create", "configured": "would-configure", "adopted": "would-adopt"}
_VOLATILE_METADATA = (
    "resourceVersion",
    "managedFields",
    "generation",
    "creationTimestamp",
    "uid",
    "selfLink",
)


@dataclass(frozen=True)
class DeployOptions:
    dry_run: bool = False
    force_conflicts: bool = False
    # Take over objects another tool applied (`kubectl apply -k`): every object is applied with
    # force, even when its content is equal, so this project becomes its field manager, and the
    # client-side-apply annotation is removed (see adopt.py).
    adopt: bool = False
    # False where the namespace is created by the cluster admin (deploy/rbac) and the service
    # account holds no cluster-scoped rights: Namespace objects are then left alone.
    manage_namespace: bool = True
    prune: bool = True
    confirm_prune: frozenset[str] = field(default_factory=frozenset)  # kinds or Kind/namespace/name
    rollout: WaitTiming = field(default_factory=lambda: WaitTiming(600))
    database: WaitTiming = field(default_factory=lambda: WaitTiming(600))


def comparable(body: dict[str, Any]) -> dict[str, Any]:
    """The part of an object a write could change: no status, no server bookkeeping."""
    out = {k: v for k, v in body.items() if k not in ("status", "apiVersion", "kind")}
    meta = {k: v for k, v in (out.get("metadata") or {}).items() if k not in _VOLATILE_METADATA}
    out["metadata"] = meta
    return out


def _is_custom(api_version: str) -> bool:
    group = api_version.rpartition("/")[0]
    return "." in group and not group.endswith(".k8s.io")


def hpa_targets(bodies: list[dict[str, Any]]) -> set[tuple[str, str]]:
    """(kind, name) of every workload an HPA in `bodies` scales."""
    targets = set()
    for body in bodies:
        if body.get("kind") == "HorizontalPodAutoscaler":
            target = (body.get("spec") or {}).get("scaleTargetRef") or {}
            targets.add((str(target.get("kind")), str(target.get("name"))))
    return targets


@dataclass
class _Plan:
    actions: dict[Key, str]  # created | configured | unchanged, by object_key
    to_send: list[dict[str, Any]]
    prune: list[tuple[dict[str, Any], bool]]  # (live object, protected)
    sent: dict[Key, dict[str, Any]]
    dry: dict[Key, dict[str, Any]]
    live: dict[Key, dict[str, Any]]

    @property
    def writes_ahead(self) -> bool:
        return any(a != "unchanged" for a in self.actions.values()) or any(not p for _, p in self.prune)

    def observed(self, written: dict[Key, dict[str, Any]]) -> dict[Key, Observation]:
        """Each object as the deploy left it: as its apply returned it when written, else its
        dry-run and live state from this plan (an unchanged object's dry-run equals its live state
        unless another manager owns part of it)."""
        out = {}
        for key, body in self.sent.items():
            if key in written:
                out[key] = Observation(body, written[key], written[key])
            elif key in self.dry and key in self.live:
                out[key] = Observation(body, self.dry[key], self.live[key])
        return out


class DeployEngine:
    """Applies one environment's bundle to one cluster."""

    def __init__(
        self,
        kube: Kube,
        environment: str,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleeper: Callable[[float], None] = time.sleep,
        log: Callable[[str], None] = lambda _: None,
        heartbeat: Callable[[], None] = lambda: None,
        warn: Callable[[str], None] | None = None,
    ):
        self.kube, self.environment = kube, environment
        self.clock, self.sleeper, self.log = clock, sleeper, log
        # Warnings go to the run's log as they happen, so a run that fails later still shows them.
        self.warn = warn or log
        self.heartbeat = heartbeat  # called between polls of every wait (the Lease renews there)

    def prepare(
        self, objects: list[dict[str, Any]]
    ) -> tuple[list[dict[str, Any]], list[str], list[ObjectOutcome]]:
        """Label the objects, write their quantities canonically and drop the kinds the cluster does
        not serve (with a warning)."""
        # Quantities as the server stores them (`1000m` is `1`): a value another manager set the
        # same way is then the same value, not a field conflict.
        bodies = [
            labelled(
                body if body.get("kind") in ("ConfigMap", "Secret") else canonical_resources(body),
                self.environment,
            )
            for body in objects
        ]
        served: dict[tuple[str, str], bool] = {}
        kept, warnings, skipped = [], [], []
        for body in bodies:
            gvk = (body["apiVersion"], body["kind"])
            if gvk not in served:
                served[gvk] = self.kube.resource(*gvk) is not None
                if not served[gvk] and not _is_custom(gvk[0]):
                    raise DryRunRejected(f"{ref(body)}: {gvk[0]} {gvk[1]} is not served by this cluster")
            if served[gvk]:
                kept.append(body)
                continue
            message = f"{ref(body)}: skipped, the cluster has no CRD for {gvk[0]} {gvk[1]}"
            warnings.append(message)
            skipped.append(ObjectOutcome(ref(body), wave_of(body).name, "skipped", "CRD not installed"))
        return kept, warnings, skipped

    def ensure_namespaces(self, bodies: list[dict[str, Any]], dry_run: bool) -> list[ObjectOutcome]:
        """Create absent Namespaces before anything else (namespaced dry-runs need them)."""
        outcomes = []
        for body in (b for b in bodies if b["kind"] == "Namespace"):
            if self.kube.get("v1", "Namespace", body["metadata"]["name"]) is not None:
                continue
            self._dry_run_all([body])
            if not dry_run:
                self.kube.apply(body)
            outcomes.append(ObjectOutcome(ref(body), "namespace", "would-create" if dry_run else "created"))
        return outcomes

    def _dry_run_all(self, bodies: list[dict[str, Any]], force: bool = False) -> dict[Key, dict[str, Any]]:
        results: dict[Key, dict[str, Any]] = {}
        rejected: list[str] = []
        conflicts: list[str] = []
        for body in bodies:
            try:
                results[object_key(body)] = self.kube.apply(body, dry_run=True, force=force)
            except ApiError as exc:
                if exc.transient:
                    raise
                (conflicts if exc.status == 409 else rejected).append(f"{ref(body)}: {exc}")
        if conflicts:
            raise FieldConflict(
                f"{self.environment}: field conflicts with other managers (set force_conflicts to take "
                f"ownership); nothing applied: " + "; ".join(conflicts)
            )
        if rejected:
            raise DryRunRejected(
                f"{self.environment}: server-side dry-run rejected {len(rejected)} object(s); "
                "nothing applied: " + "; ".join(rejected)
            )
        return results

    def _live(self, bodies: list[dict[str, Any]], namespace: str) -> dict[Key, dict[str, Any]]:
        kinds = {(b["apiVersion"], b["kind"]) for b in bodies} | set(PRUNABLE_KINDS)
        live: dict[Key, dict[str, Any]] = {}
        for api_version, kind in sorted(kinds):
            resource = self.kube.resource(api_version, kind)
            if resource is None:
                continue
            if not resource.namespaced:
                # Never listed cluster-wide (the real server would return every environment's and
                # every team's Namespaces): the bundle's own cluster-scoped objects are read by name.
                for body in bodies:
                    if (body["apiVersion"], body["kind"]) == (api_version, kind):
                        found = self.kube.get(api_version, kind, body["metadata"]["name"])
                        if found is not None:
                            found.update(apiVersion=api_version, kind=kind)
                            live[object_key(found)] = found
                continue
            for item in self.kube.list(api_version, kind, namespace, inventory_selector(self.environment)):
                item.setdefault("apiVersion", api_version)
                item.setdefault("kind", kind)
                live[object_key(item)] = item
        return live

    def deploy(
        self,
        objects: list[dict[str, Any]],
        namespace: str,
        options: DeployOptions,
        *,
        digest: str = "",
        hooks: Mapping[str, Hook] | None = None,
        before_writes: Callable[[], bool | None] = lambda: True,
    ) -> DeployResult:
        """Dry-run, apply in waves, wait and prune. Raises DryRunRejected, FieldConflict,
        RolloutFailed or ApiError; nothing is applied when the dry-run fails.

        `before_writes` runs once before the first write (it takes the Lease) and says whether the
        plan made before it is still current (True: no other deploy took the Lease since the plan
        began); otherwise the bundle is planned again under the Lease."""
        result = DeployResult(self.environment, digest, options.dry_run)
        if not options.manage_namespace:
            objects = [o for o in objects if o.get("kind") != "Namespace"]
        bodies, result.warnings, skipped = self.prepare(objects)
        for warning in result.warnings:
            self.warn(warning)
        created_namespaces = self.ensure_namespaces(bodies, options.dry_run)
        try:
            plan = self._plan(bodies, namespace, options, created_namespaces)
        except (DryRunRejected, FieldConflict):
            if not options.dry_run:  # nothing is applied: not even the namespace made for the dry-run
                for outcome in created_namespaces:
                    self.kube.delete("v1", "Namespace", outcome.ref.split("/", 1)[1])
            raise
        writes_ahead = plan.writes_ahead or bool(hooks and "migrate" in hooks)
        # before_writes takes the Lease; when another deploy ran while this one planned, plan again
        # under it.
        if not options.dry_run and writes_ahead and not before_writes():
            plan = self._plan(bodies, namespace, options, created_namespaces)
        sendable = {object_key(b): b for b in plan.to_send}
        written: dict[Key, dict[str, Any]] = {}
        for wave, members in plan_waves(bodies):
            wave_result = WaveResult(wave.name)
            started = self.clock()
            if wave.hook:
                if hooks and wave.hook in hooks and not options.dry_run:
                    result.hooks[wave.hook] = hooks[wave.hook]()
                    wave_result.note = f"ran {wave.hook}"
                else:
                    wave_result.note = "no hook configured" if not options.dry_run else "not run in a dry run"
            for body in members:
                action = plan.actions[object_key(body)]
                if options.adopt and action == "unchanged" and body["kind"] != "Namespace":
                    action = "adopted"
                detail = ""
                if not options.dry_run and action != "unchanged" and body["kind"] != "Namespace":
                    applied = self.kube.apply(
                        sendable[object_key(body)], force=options.force_conflicts or options.adopt
                    )
                    written[object_key(body)] = applied
                    if options.adopt:
                        detail = takeover(plan.live.get(object_key(body)), applied, self.kube.field_manager)
                        adopt_ownership(self.kube, applied)
                shown = _DRY_RUN_ACTIONS.get(action, action) if options.dry_run else action
                wave_result.outcomes.append(ObjectOutcome(ref(body), wave.name, shown, detail))
            wave_result.outcomes += [o for o in skipped if o.wave == wave.name]
            if wave.wait and not options.dry_run:
                self._wait(wave, members, options)
            wave_result.seconds = round(self.clock() - started, 3)
            result.waves.append(wave_result)
        result.waves.append(self._prune(plan.prune, options))
        if not options.dry_run and not options.adopt:  # adoption edits objects after their apply
            result.observed = plan.observed(written)
        return result

    def _plan(
        self,
        bodies: list[dict[str, Any]],
        namespace: str,
        options: DeployOptions,
        created_namespaces: list[ObjectOutcome],
    ) -> _Plan:
        """Each object's action (from its dry-run result against the live object), the bodies to
        send, and the prune candidates. Raises DryRunRejected or FieldConflict."""
        # In a dry run of a first deploy the namespace does not exist, so its objects cannot be
        # dry-run by the server; they are reported as would-create.
        namespace_exists = not (options.dry_run and created_namespaces)
        rest = [
            b
            for b in bodies
            if b["kind"] != "Namespace" and (namespace_exists or not b["metadata"].get("namespace"))
        ]
        hpa = hpa_targets(bodies)
        live = self._live(bodies, namespace) if namespace_exists else {}
        to_send = [self._keep_autoscaled_replicas(b, hpa, live) for b in rest]
        dry = self._dry_run_all(to_send, options.force_conflicts or options.adopt)
        if not options.dry_run:
            dry.update(self._namespace_drift_dry_runs(bodies, live))
        created = {o.ref for o in created_namespaces}
        actions: dict[Key, str] = {}
        for body in bodies:
            key = object_key(body)
            if body["kind"] == "Namespace":
                actions[key] = "created" if ref(body) in created else "unchanged"
            elif key not in dry or key not in live:
                actions[key] = "created"
            else:
                actions[key] = "unchanged" if comparable(dry[key]) == comparable(live[key]) else "configured"
        sent = {object_key(b): b for b in to_send} | {
            object_key(b): b for b in bodies if b["kind"] == "Namespace"
        }
        return _Plan(actions, to_send, self._prune_candidates(live, bodies, options), sent, dry, live)

    def _namespace_drift_dry_runs(
        self, bodies: list[dict[str, Any]], live: dict[Key, dict[str, Any]]
    ) -> dict[Key, dict[str, Any]]:
        """Dry-runs of the existing Namespaces, as the drift check makes them (with force): the
        engine writes a Namespace only to create it, so these only let the run's drift check reuse
        the plan. One the server refuses is left out (the drift check then dry-runs for itself)."""
        results = {}
        for body in bodies:
            if body["kind"] == "Namespace" and object_key(body) in live:
                try:
                    results[object_key(body)] = self.kube.apply(body, dry_run=True, force=True)
                except ApiError as exc:
                    if exc.transient:
                        raise
        return results

    def _keep_autoscaled_replicas(
        self, body: dict[str, Any], hpa: set[tuple[str, str]], live: dict[Key, dict[str, Any]]
    ) -> dict[str, Any]:
        # Once an HPA scales a workload, applying the manifest's replicas would undo its decision
        # (or conflict with its field manager), and dropping the field would reset it to 1. Applying
        # the live value keeps shared ownership and changes nothing.
        current = live.get(object_key(body))
        if (body["kind"], body["metadata"]["name"]) in hpa and current is not None:
            replicas = (current.get("spec") or {}).get("replicas")
            if replicas is not None:
                body = copy.deepcopy(body)
                body.setdefault("spec", {})["replicas"] = replicas
        return body

    def _wait(self, wave: Wave, members: list[dict[str, Any]], options: DeployOptions) -> None:
        timing = options.database if wave is DATABASE else options.rollout
        for body in members:
            if body["kind"] in WORKLOAD_KINDS:
                wait_for_rollout(
                    self.kube,
                    body,
                    timing,
                    clock=self.clock,
                    sleeper=self._beat_and_sleep,
                    on_progress=self.log,
                )

    def _beat_and_sleep(self, seconds: float) -> None:
        self.heartbeat()
        self.sleeper(seconds)

    def _prune_candidates(
        self, live: dict[Key, dict[str, Any]], bodies: list[dict[str, Any]], options: DeployOptions
    ) -> list[tuple[dict[str, Any], bool]]:
        if not options.prune:
            return []
        wanted = {object_key(b) for b in bodies}
        # Claims a StatefulSet made from its volumeClaimTemplates (<template>-<set>-<ordinal>) carry
        # the template's labels but belong to the data, not to the bundle: never prune them.
        claim_prefixes = tuple(
            f"{(t.get('metadata') or {}).get('name')}-{b['metadata']['name']}-"
            for b in bodies
            if b["kind"] == "StatefulSet"
            for t in (b.get("spec") or {}).get("volumeClaimTemplates") or []
        )
        candidates = []
        for key, item in sorted(live.items()):
            if key in wanted or item["metadata"].get("ownerReferences"):
                continue
            if item["kind"] == "PersistentVolumeClaim" and item["metadata"]["name"].startswith(
                claim_prefixes
            ):
                continue
            protected = item["kind"] in PROTECTED_KINDS and not (
                item["kind"] in options.confirm_prune or ref(item) in options.confirm_prune
            )
            candidates.append((item, protected))
        return candidates

    def _prune(self, candidates: list[tuple[dict[str, Any], bool]], options: DeployOptions) -> WaveResult:
        wave = WaveResult("prune")
        started = self.clock()
        for item, protected in candidates:
            if protected:
                wave.outcomes.append(
                    ObjectOutcome(
                        ref(item), "prune", "skipped", "protected kind: confirm it in confirm_prune to delete"
                    )
                )
                continue
            if not options.dry_run:
                meta = item["metadata"]
                self.kube.delete(item["apiVersion"], item["kind"], meta["name"], meta.get("namespace", ""))
            wave.outcomes.append(
                ObjectOutcome(ref(item), "prune", "would-prune" if options.dry_run else "pruned")
            )
        wave.seconds = round(self.clock() - started, 3)
        return wave
