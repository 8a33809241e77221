"""The deploy engine end to end (llm_cost_ops_ops.k8s: engine, releases, ledger, lease, wait) with the
real rendered bundles, against the API-server double over HTTP and its controller simulator.

The simulator is stepped by the engine's own sleeper and the engine's clock is fake (one poll = one
controller step = `POLL` fake seconds), so rollouts are deterministic and deadlines cost no real time.

Cases:
- first deploy to an empty cluster: the non-dry-run PATCHes follow the waves (Namespace first,
  ServiceAccounts/Roles/RoleBindings before ConfigMaps, PVCs before Services, the StatefulSet before
  the API Deployment, HPA/PDB/Ingress/NetworkPolicy after the API, monitoring last); the StatefulSet is
  ready when the API Deployment is applied; every outcome `created`; the ServiceMonitor `skipped` with
  a warning without its CRD, and `created` (applied after the monitoring workloads) with it;
- a redeploy of the same bundle writes nothing (no write request at all, no new release) and every
  outcome is `unchanged`;
- an API image change: only the Deployment is `configured` (the only bundle write), it rolls out to the
  new image, and the release is revision 2 with the new image;
- crash-looping, image-pull and OOM-killed images fail the rollout (RolloutFailed, not a timeout) well
  before the deadline, naming pod, container, reason and the last log lines; a failed release is
  recorded and the Lease is released;
- ProgressDeadlineExceeded fails naming it; a stuck rollout raises RolloutTimeout once the fake clock
  passes the deadline;
- a server-side validation error on one object rejects the bundle before any write, naming the object
  and the server's reason; on a first deploy no bundle object is written (only the Namespace, which
  namespaced dry-runs need) and nothing is left in the cluster (that Namespace is removed again);
- a built-in kind the cluster does not serve is rejected before any request but discovery;
- a dry run of a first deploy reports `would-create` and writes nothing;
- prune: a removed Ingress and ConfigMap are `pruned` and gone; a removed PVC and Secret are `skipped`
  (protected) and kept, and pruned when confirm_prune names the kind or Kind/ns/name (ledger Secrets
  survive that); a dry run lists `would-prune` and deletes nothing; objects with ownerReferences, and
  ReplicaSets and Pods, are never pruned; a StatefulSet's claim labelled from its volumeClaimTemplate
  (as the real controller labels it) is never pruned, even with confirm_prune PersistentVolumeClaim;
- 20% transient API errors (5xx) still converge to a healthy release that a redeploy finds unchanged;
- a deploy that dies midway (API writes failing with 500 past the retries, or a migration hook raising)
  leaves a released Lease and converges when run again; a failed release is recorded for the ApiError,
  and for the hook's own error too;
- the Lease: held by another run -> LeaseHeld with no write; an expired Lease is taken over; two
  threads deploying at once never interleave (one LeaseHeld, or both in turn) and ledger revisions are
  consecutive; a deploy plans once when no one took the Lease since its plan began, and a deploy
  whose plan went stale before it took the Lease still leaves the cluster matching its release (it
  plans again under the Lease: two dry-runs per object);
- rollback: deploy A, deploy B, rollback -> A's image runs, operation rollback, rollback_of A; after a
  failed B the rollback targets A and rolls out (the wait does not judge the failed revision's
  crash-looping pods before the controller observes the new generation); unknown revision or no
  earlier healthy release -> ReleaseNotFound;
- promotion gate: staging without a release, running another app image, or whose latest release failed
  blocks; staging's latest healthy release with the same app image passes; a digest-pinned app image
  from a registry with a port is still recognised and gated;
- the ledger keeps the last 10 releases and keeps numbering after the cap.
"""

from __future__ import annotations

import copy
import re
import threading
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from kubernetes import client

from llm_cost_ops_ops.bundles.model import ManifestObject, RenderedBundle
from llm_cost_ops_ops.k8s.client import Kube
from llm_cost_ops_ops.k8s.engine import DeployOptions
from llm_cost_ops_ops.k8s.errors import (
    ApiError,
    DryRunRejected,
    LeaseHeld,
    PromotionBlocked,
    ReleaseNotFound,
    RolloutFailed,
    RolloutTimeout,
)
from llm_cost_ops_ops.k8s.health import deployment_health, statefulset_health
from llm_cost_ops_ops.k8s.inventory import inventory_labels
from llm_cost_ops_ops.k8s.lease import LEASE_NAME, EnvironmentLease
from llm_cost_ops_ops.k8s.ledger import Release, ReleaseLedger
from llm_cost_ops_ops.k8s.outcomes import DeployResult
from llm_cost_ops_ops.k8s.releases import ReleaseRequest, check_promotion, execute_release, rollback_request
from llm_cost_ops_ops.k8s.wait import WaitTiming
from tests.k8s_double import ApiServer, ControllerSimulator, RecordedRequest

pytestmark = pytest.mark.e2e

DEV = "llm-cost-ops-dev"
STAGING = "llm-cost-ops-staging"
PROD = "llm-cost-ops-prod"
API = "llm-cost-ops"
POLL = 1.0
DEADLINE = 120.0
OPTIONS = DeployOptions(rollout=WaitTiming(DEADLINE, POLL), database=WaitTiming(DEADLINE, POLL))
CRASH_LOG = "".join(f"line {i}\n" for i in range(1, 28)) + "FATAL: DATABASE_URL is not set\n"


# --- harness -----------------------------------------------------------------------------------


class Cluster:
    """The double, its simulator stepped by the engine's sleeper, and a fake clock."""

    def __init__(self, server: ApiServer, sim: ControllerSimulator):
        self.server, self.sim = server, sim
        self.now = 0.0
        self.pod_log: str | None = None
        self._lock = threading.Lock()
        self.kube = self.connect()

    def connect(self, kube_class: type[Kube] = Kube, **kwargs: Any) -> Kube:
        return kube_class(
            client.ApiClient(self.server.client_configuration()), sleeper=lambda _: None, **kwargs
        )

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.now += seconds
        self.sim.step()
        if self.pod_log is not None:
            for namespace in (DEV, STAGING, PROD):
                for pod in self.server.objects("v1", "Pod", namespace):
                    self.server.set_pod_log(namespace, pod["metadata"]["name"], self.pod_log)

    def deploy(
        self,
        bundle: RenderedBundle,
        run_id: str,
        options: DeployOptions = OPTIONS,
        *,
        namespace: str | None = None,
        kube: Kube | None = None,
        hooks: dict | None = None,
    ) -> tuple[DeployResult, Release | None]:
        namespace = namespace or bundle.namespaces()[0]
        request = ReleaseRequest.for_bundle(bundle, namespace, run_id, options)
        return self.execute(request, kube=kube, hooks=hooks)

    def execute(
        self, request: ReleaseRequest, *, kube: Kube | None = None, hooks: dict | None = None
    ) -> tuple[DeployResult, Release | None]:
        return execute_release(kube or self.kube, request, hooks=hooks, clock=self.clock, sleeper=self.sleep)

    def ledger(self, environment: str = "dev", namespace: str = DEV) -> ReleaseLedger:
        return ReleaseLedger(self.kube, environment, namespace)

    def api_image(self, namespace: str = DEV) -> str:
        live = self.server.read("apps/v1", "Deployment", API, namespace)
        return live["spec"]["template"]["spec"]["containers"][0]["image"]

    def lease_holder(self, namespace: str = DEV) -> str | None:
        lease = self.server.read("coordination.k8s.io/v1", "Lease", LEASE_NAME, namespace)
        return ((lease or {}).get("spec") or {}).get("holderIdentity")


@pytest.fixture
def cluster(k8s_server: ApiServer, k8s_controllers: ControllerSimulator) -> Cluster:
    return Cluster(k8s_server, k8s_controllers)


@pytest.fixture
def dev(render_overlays) -> RenderedBundle:
    return render_overlays["dev"]


@pytest.fixture
def prod(render_overlays) -> RenderedBundle:
    return render_overlays["prod"]


def _applied(server: ApiServer) -> list[RecordedRequest]:
    """Write requests that change state (dry-runs excluded)."""
    return [r for r in server.requests if r.is_write and r.query.get("dryRun") != "All"]


def _target(request: RecordedRequest) -> tuple[str, str]:
    """(resource plural, name) of a request path."""
    parts = request.path.strip("/").split("/")
    if "namespaces" in parts:
        i = parts.index("namespaces")
        rest = parts[i + 1 :]
        if len(rest) <= 1:
            return "namespaces", "".join(rest)
        return rest[1], rest[2] if len(rest) > 2 else ""
    return parts[-2], parts[-1]


def _edited(bundle: RenderedBundle, edit: Callable[[dict], dict | None], *extra: dict) -> RenderedBundle:
    objects = []
    for obj in bundle.objects:
        body = edit(copy.deepcopy(obj.body))
        if body is not None:
            objects.append(ManifestObject(body, obj.source))
    objects += [ManifestObject(body) for body in extra]
    return RenderedBundle.from_objects(bundle.environment, objects)


def _with_api_image(bundle: RenderedBundle, tag: str) -> RenderedBundle:
    def edit(body: dict) -> dict:
        if body["kind"] == "Deployment" and body["metadata"]["name"] == API:
            spec = body["spec"]["template"]["spec"]
            for container in spec.get("initContainers", []) + spec["containers"]:
                if "/llm-cost-ops:" in container["image"]:
                    container["image"] = container["image"].rsplit(":", 1)[0] + f":{tag}"
        return body

    return _edited(bundle, edit)


def _without(bundle: RenderedBundle, *refs: str) -> RenderedBundle:
    def edit(body: dict) -> dict | None:
        return None if f"{body['kind']}/{body['metadata']['name']}" in refs else body

    return _edited(bundle, edit)


def _with_config(bundle: RenderedBundle, **data: str) -> RenderedBundle:
    def edit(body: dict) -> dict:
        if body["kind"] == "ConfigMap" and body["metadata"]["name"] == "llm-cost-ops-config":
            body["data"].update(data)
        return body

    return _edited(bundle, edit)


def _config_map(name: str, namespace: str = DEV, environment: str = "dev", **meta: Any) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace, "labels": inventory_labels(environment), **meta},
        "data": {"flag": "on"},
    }


def _outcomes(result: DeployResult) -> dict[str, str]:
    return {o.ref: o.action for o in result.outcomes()}


def _image(bundle: RenderedBundle) -> str:
    [image] = [i for i in bundle.images() if "/llm-cost-ops:" in i]
    return image


# --- first deploy ------------------------------------------------------------------------------


def test_first_deploy_applies_in_wave_order(cluster, prod):
    seen_at_api_apply: dict = {}

    def snapshot(request: RecordedRequest):
        if (
            request.method == "PATCH"
            and "dryRun" not in request.query
            and _target(request)
            == (
                "deployments",
                API,
            )
        ):
            seen_at_api_apply["postgres"] = cluster.server.read("apps/v1", "StatefulSet", "postgres", PROD)

    cluster.server.inject(snapshot)

    result, release = cluster.deploy(prod, "run-1")

    order = [_target(r) for r in _applied(cluster.server) if r.method == "PATCH"]
    plurals = [plural for plural, _ in order]
    assert order[0] == ("namespaces", PROD)

    def first(*names):
        return min(i for i, t in enumerate(order) if t[0] in names or t in names)

    def last(*names):
        return max(i for i, t in enumerate(order) if t[0] in names or t in names)

    assert last("serviceaccounts", "roles", "rolebindings") < first("configmaps", "secrets")
    assert last("configmaps") < first("persistentvolumeclaims")
    assert last("persistentvolumeclaims") < first("services")
    assert last("services") < first("statefulsets")
    assert last("statefulsets") < first(("deployments", API))
    traffic = ("horizontalpodautoscalers", "poddisruptionbudgets", "ingresses", "networkpolicies")
    assert first(*traffic) > first(("deployments", API))
    assert first(("deployments", "grafana"), ("deployments", "prometheus")) > last(*traffic)
    assert plurals.count("networkpolicies") == len(prod.of_kind("NetworkPolicy"))
    assert "servicemonitors" not in plurals

    postgres = seen_at_api_apply["postgres"]
    assert statefulset_health(postgres).state == "healthy"
    assert postgres["status"]["readyReplicas"] == 1

    actions = _outcomes(result)
    skipped = {ref: action for ref, action in actions.items() if action != "created"}
    assert skipped == {f"ServiceMonitor/{PROD}/{API}": "skipped"}
    assert len(actions) == len(prod.objects)
    [monitor] = [o for o in result.outcomes() if o.action == "skipped"]
    assert monitor.detail == "CRD not installed"
    assert result.warnings == [
        f"ServiceMonitor/{PROD}/{API}: skipped, the cluster has no CRD for monitoring.coreos.com/v1 "
        "ServiceMonitor"
    ]
    assert (release.revision, release.outcome, release.operation) == (1, "healthy", "deploy")
    assert release.digest == prod.digest
    assert deployment_health(cluster.server.read("apps/v1", "Deployment", API, PROD)).state == "healthy"
    assert cluster.lease_holder(PROD) is None


def test_service_monitor_is_applied_when_its_crd_is_installed(k8s_server, k8s_controllers, prod):
    k8s_server.install_crd("monitoring.coreos.com", "v1", "ServiceMonitor", "servicemonitors")
    cluster = Cluster(k8s_server, k8s_controllers)

    result, release = cluster.deploy(prod, "run-1")

    assert set(_outcomes(result).values()) == {"created"}
    assert result.warnings == []
    assert k8s_server.read("monitoring.coreos.com/v1", "ServiceMonitor", API, PROD) is not None
    order = [_target(r) for r in _applied(k8s_server) if r.method == "PATCH"]
    assert order.index(("servicemonitors", API)) > order.index(("deployments", "prometheus"))
    assert order.index(("servicemonitors", API)) > order.index(("deployments", API))
    assert release.healthy


def test_redeploy_of_the_same_bundle_writes_nothing(cluster, dev):
    _, first = cluster.deploy(dev, "run-1")
    cluster.server.reset_counters()

    result, release = cluster.deploy(dev, "run-2")

    assert _applied(cluster.server) == []
    assert {a for ref, a in _outcomes(result).items() if not ref.startswith("ServiceMonitor/")} == {
        "unchanged"
    }
    assert result.writes == 0
    assert release == first
    assert [r.revision for r in cluster.ledger().releases()] == [1]


def test_image_change_rolls_out_the_deployment_only(cluster, dev):
    cluster.deploy(dev, "run-1")
    changed = _with_api_image(dev, "1.5.0")
    cluster.server.reset_counters()

    result, release = cluster.deploy(changed, "run-2")

    actions = _outcomes(result)
    assert {ref for ref, a in actions.items() if a not in ("unchanged", "skipped")} == {
        f"Deployment/{DEV}/{API}"
    }
    assert actions[f"Deployment/{DEV}/{API}"] == "configured"
    bundle_writes = [
        _target(r) for r in _applied(cluster.server) if _target(r)[0] not in ("leases", "secrets")
    ]
    assert bundle_writes == [("deployments", API)]
    assert cluster.api_image() == "ghcr.io/llm-cost-ops/llm-cost-ops:1.5.0"
    live = cluster.server.read("apps/v1", "Deployment", API, DEV)
    assert deployment_health(live).state == "healthy"
    assert (release.revision, release.outcome) == (2, "healthy")
    assert "ghcr.io/llm-cost-ops/llm-cost-ops:1.5.0" in release.images
    assert release.digest == changed.digest


# --- failing rollouts --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "reason"),
    [
        ("crashloop", "CrashLoopBackOff"),
        ("imagepull", "(ErrImagePull|ImagePullBackOff)"),
        ("oomkilled", "(CrashLoopBackOff, last terminated )?OOMKilled"),
    ],
)
def test_failing_image_fails_the_rollout_naming_pod_container_and_reason(cluster, dev, mode, reason):
    cluster.deploy(dev, "run-1")
    cluster.sim.fail_image(":2.0.0-bad", mode)
    cluster.pod_log = CRASH_LOG
    options = DeployOptions(rollout=WaitTiming(DEADLINE, POLL, log_lines=3), database=OPTIONS.database)
    started = cluster.now

    with pytest.raises(RolloutFailed) as failed:
        cluster.deploy(_with_api_image(dev, "2.0.0-bad"), "run-2", options)

    assert not isinstance(failed.value, RolloutTimeout)
    assert cluster.now - started < DEADLINE / 4
    message = str(failed.value)
    bad_pods = [
        p["metadata"]["name"]
        for p in cluster.server.objects("v1", "Pod", DEV)
        if p["spec"]["containers"][0]["image"].endswith(":2.0.0-bad")
    ]
    assert any(f"pod {name} container llm-cost-ops: " in message for name in bad_pods), message
    assert message.startswith(f"Deployment {DEV}/{API} rollout failed: ")
    assert re.search(f"container llm-cost-ops: {reason}", message), message
    assert "last log lines: line 26 | line 27 | FATAL: DATABASE_URL is not set" in message
    assert "line 25" not in message
    [_, latest] = cluster.ledger().releases()
    assert (latest.revision, latest.outcome) == (2, "failed")
    assert re.search(reason, latest.detail)
    assert cluster.lease_holder() is None


def test_progress_deadline_exceeded_fails_naming_it(cluster, dev):
    cluster.deploy(dev, "run-1")
    cluster.sim.fail("Deployment", DEV, API, "progress-deadline")

    with pytest.raises(RolloutFailed, match="ProgressDeadlineExceeded") as failed:
        cluster.deploy(_with_api_image(dev, "2.0.0"), "run-2")

    assert not isinstance(failed.value, RolloutTimeout)
    assert str(failed.value).startswith(f"Deployment {DEV}/{API}: ProgressDeadlineExceeded")
    assert cluster.now < DEADLINE
    assert cluster.ledger().latest().outcome == "failed"


def test_stuck_rollout_times_out_after_the_deadline(cluster, dev):
    cluster.deploy(dev, "run-1")
    cluster.sim.fail("Deployment", DEV, API, "stuck")
    options = DeployOptions(rollout=WaitTiming(30, 2.0), database=OPTIONS.database)
    started = cluster.now

    with pytest.raises(RolloutTimeout) as timed_out:
        cluster.deploy(_with_api_image(dev, "2.0.0"), "run-2", options)

    assert 30 <= cluster.now - started <= 34
    assert str(timed_out.value).startswith(f"Deployment {DEV}/{API} not healthy after 30s: ")
    assert cluster.ledger().latest().outcome == "failed"
    assert cluster.lease_holder() is None


# --- rejected bundles --------------------------------------------------------------------------


INVALID_HOST = "spec.rules[0].host: Invalid value: 'llm cost ops': a lowercase RFC 1123 subdomain"


def _reject_ingress(server: ApiServer) -> None:
    server.reject(lambda obj: obj.get("kind") == "Ingress", INVALID_HOST, field="spec.rules[0].host")


def test_validation_error_rejects_the_bundle_before_any_write(cluster, dev):
    cluster.deploy(dev, "run-1")
    _reject_ingress(cluster.server)
    cluster.server.reset_counters()

    with pytest.raises(DryRunRejected) as rejected:
        cluster.deploy(_with_api_image(dev, "2.0.0"), "run-2")

    assert _applied(cluster.server) == []
    message = str(rejected.value)
    assert message.startswith("dev: server-side dry-run rejected 1 object(s); nothing applied: ")
    assert f"Ingress/{DEV}/{API}: " in message
    assert INVALID_HOST in message
    assert cluster.api_image() == _image(dev)
    assert [r.revision for r in cluster.ledger().releases()] == [1]


def test_rejected_first_deploy_leaves_nothing_in_the_cluster(cluster, dev):
    _reject_ingress(cluster.server)

    with pytest.raises(DryRunRejected, match=f"Ingress/{DEV}/{API}"):
        cluster.deploy(dev, "run-1")

    assert cluster.server.read("v1", "Namespace", DEV) is None


def test_rejected_first_deploy_applies_no_bundle_object(cluster, dev):
    _reject_ingress(cluster.server)

    with pytest.raises(DryRunRejected):
        cluster.deploy(dev, "run-1")

    assert [_target(r) for r in _applied(cluster.server) if _target(r)[0] != "namespaces"] == []
    for api_version, kind in [("apps/v1", "Deployment"), ("v1", "ConfigMap"), ("v1", "Secret")]:
        assert cluster.server.objects(api_version, kind, DEV) == []


def test_built_in_kind_not_served_is_rejected(cluster, dev):
    cron = {
        "apiVersion": "batch/v1beta1",
        "kind": "CronJob",
        "metadata": {"name": "nightly", "namespace": DEV},
        "spec": {"schedule": "0 3 * * *", "jobTemplate": {"spec": {"template": {"spec": {}}}}},
    }

    with pytest.raises(DryRunRejected) as rejected:
        cluster.deploy(_edited(dev, lambda b: b, cron), "run-1")

    assert str(rejected.value) == (
        f"CronJob/{DEV}/nightly: batch/v1beta1 CronJob is not served by this cluster"
    )
    assert [r for r in cluster.server.requests if r.is_write] == []
    assert cluster.server.read("v1", "Namespace", DEV) is None


# --- prune -------------------------------------------------------------------------------------


def test_removed_ingress_and_config_map_are_pruned(cluster, dev):
    cluster.deploy(_edited(dev, lambda b: b, _config_map("feature-flags")), "run-1")
    assert cluster.server.read("v1", "ConfigMap", "feature-flags", DEV) is not None
    cluster.server.reset_counters()

    result, release = cluster.deploy(_without(dev, f"Ingress/{API}"), "run-2")

    prune = result.waves[-1]
    assert prune.name == "prune"
    assert {o.ref: o.action for o in prune.outcomes} == {
        f"ConfigMap/{DEV}/feature-flags": "pruned",
        f"Ingress/{DEV}/{API}": "pruned",
    }
    assert cluster.server.read("networking.k8s.io/v1", "Ingress", API, DEV) is None
    assert cluster.server.read("v1", "ConfigMap", "feature-flags", DEV) is None
    deletes = sorted(_target(r) for r in _applied(cluster.server) if r.method == "DELETE")
    assert deletes == [("configmaps", "feature-flags"), ("ingresses", API)]
    assert release.revision == 2


def test_removed_pvc_and_secret_are_protected(cluster, dev):
    cluster.deploy(dev, "run-1")
    cluster.server.reset_counters()
    smaller = _without(dev, "PersistentVolumeClaim/postgres-backup", "Secret/llm-cost-ops-secrets")

    result, _ = cluster.deploy(smaller, "run-2")

    prune = {o.ref: o for o in result.waves[-1].outcomes}
    assert set(prune) == {
        f"PersistentVolumeClaim/{DEV}/postgres-backup",
        f"Secret/{DEV}/llm-cost-ops-secrets",
    }
    for outcome in prune.values():
        assert outcome.action == "skipped"
        assert "confirm_prune" in outcome.detail
    assert cluster.server.read("v1", "PersistentVolumeClaim", "postgres-backup", DEV) is not None
    assert cluster.server.read("v1", "Secret", "llm-cost-ops-secrets", DEV) is not None
    assert [r for r in _applied(cluster.server) if r.method == "DELETE"] == []


def test_confirmed_pvc_and_secret_are_pruned_and_ledger_survives(cluster, dev):
    cluster.deploy(dev, "run-1")
    smaller = _without(dev, "PersistentVolumeClaim/postgres-backup", "Secret/llm-cost-ops-secrets")
    options = DeployOptions(
        rollout=OPTIONS.rollout,
        database=OPTIONS.database,
        confirm_prune=frozenset({"PersistentVolumeClaim", f"Secret/{DEV}/llm-cost-ops-secrets"}),
    )

    result, release = cluster.deploy(smaller, "run-2", options)

    assert {o.ref: o.action for o in result.waves[-1].outcomes} == {
        f"PersistentVolumeClaim/{DEV}/postgres-backup": "pruned",
        f"Secret/{DEV}/llm-cost-ops-secrets": "pruned",
    }
    assert cluster.server.read("v1", "PersistentVolumeClaim", "postgres-backup", DEV) is None
    assert cluster.server.read("v1", "Secret", "llm-cost-ops-secrets", DEV) is None
    assert [r.revision for r in cluster.ledger().releases()] == [1, 2]
    assert release.revision == 2


def test_dry_run_lists_would_prune_and_deletes_nothing(cluster, dev):
    cluster.deploy(_edited(dev, lambda b: b, _config_map("feature-flags")), "run-1")
    cluster.server.reset_counters()
    smaller = _without(dev, f"Ingress/{API}", "PersistentVolumeClaim/postgres-backup")

    result, release = cluster.deploy(smaller, "run-2", DeployOptions(dry_run=True))

    assert release is None
    assert result.dry_run
    assert {o.ref: o.action for o in result.waves[-1].outcomes} == {
        f"ConfigMap/{DEV}/feature-flags": "would-prune",
        f"Ingress/{DEV}/{API}": "would-prune",
        f"PersistentVolumeClaim/{DEV}/postgres-backup": "skipped",
    }
    assert _applied(cluster.server) == []
    assert cluster.server.read("networking.k8s.io/v1", "Ingress", API, DEV) is not None
    assert cluster.server.read("v1", "ConfigMap", "feature-flags", DEV) is not None
    assert [r.revision for r in cluster.ledger().releases()] == [1]


def test_dry_run_of_a_first_deploy_writes_nothing(cluster, dev):
    result, release = cluster.deploy(dev, "run-1", DeployOptions(dry_run=True))

    assert release is None
    actions = _outcomes(result)
    assert {a for ref, a in actions.items() if not ref.startswith("ServiceMonitor/")} == {"would-create"}
    assert [r for r in cluster.server.requests if r.is_write and r.query.get("dryRun") != "All"] == []
    assert cluster.server.read("v1", "Namespace", DEV) is None


def test_owned_objects_are_never_pruned(cluster, dev):
    cluster.deploy(dev, "run-1")
    deployment = cluster.server.read("apps/v1", "Deployment", API, DEV)
    owner = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": API,
        "uid": deployment["metadata"]["uid"],
        "controller": True,
    }
    cluster.server.seed(_config_map("generated-by-controller", ownerReferences=[owner]))
    replica_sets = {r["metadata"]["name"] for r in cluster.server.objects("apps/v1", "ReplicaSet", DEV)}
    pods = {p["metadata"]["name"] for p in cluster.server.objects("v1", "Pod", DEV)}
    assert replica_sets and pods

    result, _ = cluster.deploy(_without(dev, f"Ingress/{API}"), "run-2")

    assert {o.ref for o in result.waves[-1].outcomes} == {f"Ingress/{DEV}/{API}"}
    assert cluster.server.read("v1", "ConfigMap", "generated-by-controller", DEV) is not None
    assert {r["metadata"]["name"] for r in cluster.server.objects("apps/v1", "ReplicaSet", DEV)} == (
        replica_sets
    )
    assert {p["metadata"]["name"] for p in cluster.server.objects("v1", "Pod", DEV)} == pods


def test_statefulset_claims_are_never_pruned(cluster, dev):
    cluster.deploy(dev, "run-1")
    # The real StatefulSet controller copies the volumeClaimTemplate's labels (here the inventory
    # labels, from the overlay's includeTemplates) onto each claim; the simulator copies only the
    # selector labels, so the claim is re-labelled here as a real cluster would have it.
    claim = cluster.server.read("v1", "PersistentVolumeClaim", "data-postgres-0", DEV)
    template = dev.find("StatefulSet", "postgres").body["spec"]["volumeClaimTemplates"][0]
    claim["metadata"]["labels"] = {**claim["metadata"]["labels"], **template["metadata"]["labels"]}
    cluster.server.seed(claim)
    options = DeployOptions(
        rollout=OPTIONS.rollout,
        database=OPTIONS.database,
        confirm_prune=frozenset({"PersistentVolumeClaim"}),
    )

    result, _ = cluster.deploy(_without(dev, "PersistentVolumeClaim/postgres-backup"), "run-2", options)

    assert cluster.server.read("v1", "PersistentVolumeClaim", "data-postgres-0", DEV) is not None
    assert {o.ref for o in result.waves[-1].outcomes} == {f"PersistentVolumeClaim/{DEV}/postgres-backup"}


# --- faults ------------------------------------------------------------------------------------


def test_transient_errors_still_converge(cluster, dev):
    # 429 is left out: urllib3 itself honours the double's `Retry-After: 1` with a real sleep.
    cluster.server.fail_ratio(0.2, codes=(500, 502, 503, 504), seed=11)

    result, release = cluster.deploy(dev, "run-1")

    assert release.healthy
    assert set(_outcomes(result).values()) == {"created", "skipped"}
    applied = [r for r in _applied(cluster.server) if r.method == "PATCH"]
    assert len(applied) > len({r.path for r in applied}), "no write was retried: were faults injected?"
    cluster.server.clear_faults()
    cluster.server.reset_counters()
    again, same = cluster.deploy(dev, "run-2")
    assert _applied(cluster.server) == []
    assert same == release
    assert {a for ref, a in _outcomes(again).items() if not ref.startswith("ServiceMonitor/")} == {
        "unchanged"
    }


def _fail_api_apply(server: ApiServer) -> None:
    def fail(request: RecordedRequest):
        applying = request.method == "PATCH" and "dryRun" not in request.query
        return 500 if applying and _target(request) == ("deployments", API) else None

    server.inject(fail)


def test_deploy_dying_on_api_errors_converges_when_run_again(cluster, dev):
    _fail_api_apply(cluster.server)

    with pytest.raises(ApiError) as died:
        cluster.deploy(dev, "run-1")

    assert died.value.status == 500
    assert f"apply Deployment {DEV}/{API}" in str(died.value)
    assert cluster.server.read("apps/v1", "StatefulSet", "postgres", DEV) is not None
    assert cluster.server.read("apps/v1", "Deployment", API, DEV) is None
    [failed] = cluster.ledger().releases()
    assert (failed.revision, failed.outcome) == (1, "failed")
    assert cluster.lease_holder() is None

    cluster.server.clear_faults()
    result, release = cluster.deploy(dev, "run-2")

    actions = _outcomes(result)
    assert actions[f"StatefulSet/{DEV}/postgres"] == "unchanged"
    assert actions[f"Deployment/{DEV}/{API}"] == "created"
    assert actions[f"Ingress/{DEV}/{API}"] == "created"
    assert (release.revision, release.outcome) == (2, "healthy")
    cluster.server.reset_counters()
    cluster.deploy(dev, "run-3")
    assert _applied(cluster.server) == []


def _failing_migration() -> dict:
    raise RuntimeError("migration 0042_add_budgets failed: relation exists")


def test_deploy_dying_in_a_hook_converges_when_run_again(cluster, dev):
    with pytest.raises(RuntimeError, match="0042_add_budgets"):
        cluster.deploy(dev, "run-1", hooks={"migrate": _failing_migration})

    assert cluster.server.read("apps/v1", "StatefulSet", "postgres", DEV) is not None
    assert cluster.server.read("apps/v1", "Deployment", API, DEV) is None
    assert cluster.lease_holder() is None

    result, release = cluster.deploy(dev, "run-2", hooks={"migrate": lambda: {"applied": ["0042"]}})

    assert release.healthy
    assert release.migrations == ["0042"]
    assert result.hooks == {"migrate": {"applied": ["0042"]}}
    assert [w.note for w in result.waves if w.name == "migrations"] == ["ran migrate"]
    assert _outcomes(result)[f"Deployment/{DEV}/{API}"] == "created"


def test_hook_failure_after_writes_records_a_failed_release(cluster, dev):
    cluster.deploy(dev, "run-1")

    with pytest.raises(RuntimeError):
        cluster.deploy(_with_api_image(dev, "2.0.0"), "run-2", hooks={"migrate": _failing_migration})

    latest = cluster.ledger().latest()
    assert (latest.revision, latest.outcome) == (2, "failed")
    assert "0042_add_budgets" in latest.detail


# --- the Lease ---------------------------------------------------------------------------------


def test_lease_held_by_another_run_stops_the_deploy_before_any_write(cluster, dev):
    cluster.deploy(dev, "run-1")
    EnvironmentLease(cluster.kube, DEV, "other-run", 600).acquire()
    cluster.server.reset_counters()

    with pytest.raises(LeaseHeld, match="another deploy \\(other-run\\) holds Lease"):
        cluster.deploy(_with_api_image(dev, "2.0.0"), "run-2")

    assert _applied(cluster.server) == []
    assert cluster.api_image() == _image(dev)
    assert cluster.lease_holder() == "other-run"
    assert [r.revision for r in cluster.ledger().releases()] == [1]


def test_expired_lease_is_taken_over(cluster, dev):
    cluster.deploy(dev, "run-1")
    an_hour_ago = datetime.now(UTC) - timedelta(hours=1)
    EnvironmentLease(cluster.kube, DEV, "crashed-run", 60, now=lambda: an_hour_ago).acquire()

    _, release = cluster.deploy(_with_api_image(dev, "2.0.0"), "run-2")

    assert (release.revision, release.run_id) == (2, "run-2")
    assert cluster.lease_holder() is None


def test_concurrent_deploys_never_interleave(cluster, dev):
    cluster.deploy(dev, "run-1")
    bundles = {"run-b": _with_api_image(dev, "2.0.0"), "run-c": _with_api_image(dev, "3.0.0")}
    start = threading.Barrier(len(bundles))
    outcomes: dict[str, Any] = {}

    def run(run_id: str) -> None:
        kube = cluster.connect()
        start.wait()
        try:
            outcomes[run_id] = cluster.deploy(bundles[run_id], run_id, kube=kube)[1]
        except Exception as exc:
            outcomes[run_id] = exc

    threads = [threading.Thread(target=run, args=(run_id,)) for run_id in bundles]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    succeeded = {k: v for k, v in outcomes.items() if isinstance(v, Release)}
    failed = {k: v for k, v in outcomes.items() if not isinstance(v, Release)}
    assert len(outcomes) == 2
    assert all(isinstance(exc, LeaseHeld) for exc in failed.values()), failed
    assert len(succeeded) >= 1
    releases = cluster.ledger().releases()
    assert [r.revision for r in releases] == list(range(1, 2 + len(succeeded)))
    assert all(r.healthy for r in releases)
    assert {r.run_id for r in releases[1:]} == set(succeeded)
    assert cluster.api_image() == _image(bundles[releases[-1].run_id])
    assert cluster.lease_holder() is None


class _RunsAnotherDeployFirst(Kube):
    """A connection that lets another deploy run to completion at its `at`-th read of the Lease
    (1: before this deploy plans, when execute_release reads the Lease's version; 2: after its
    plan, just as it takes the Lease), and counts its own dry-runs per object."""

    def __init__(self, *args: Any, meanwhile: Callable[[], None], at: int, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._meanwhile: Callable[[], None] | None = meanwhile
        self._lease_reads, self._at = 0, at
        self.dry_runs: Counter[str] = Counter()

    def get(self, api_version: str, kind: str, name: str, namespace: str = ""):
        if kind == "Lease" and self._meanwhile is not None:
            self._lease_reads += 1
            if self._lease_reads == self._at:
                meanwhile, self._meanwhile = self._meanwhile, None
                meanwhile()
        return super().get(api_version, kind, name, namespace)

    def apply(self, body: dict, *, dry_run: bool = False, force: bool = False) -> dict:
        if dry_run:
            self.dry_runs[f"{body['kind']}/{body['metadata']['name']}"] += 1
        return super().apply(body, dry_run=dry_run, force=force)


@pytest.mark.parametrize(("at", "plans"), [(1, 1), (2, 2)])
def test_deploy_whose_plan_went_stale_waiting_for_the_lease_matches_its_release(cluster, dev, at, plans):
    cluster.deploy(dev, "run-1")
    other = _with_config(dev, LOG_LEVEL="info")
    mine = _with_api_image(dev, "2.0.0")

    kube = cluster.connect(
        _RunsAnotherDeployFirst,
        meanwhile=lambda: cluster.deploy(other, "run-other", kube=cluster.connect()),
        at=at,
    )
    _, release = cluster.deploy(mine, "run-mine", kube=kube)

    assert [(r.revision, r.run_id) for r in cluster.ledger().releases()] == [
        (1, "run-1"),
        (2, "run-other"),
        (3, "run-mine"),
    ]
    assert release.digest == mine.digest
    live = cluster.server.read("v1", "ConfigMap", "llm-cost-ops-config", DEV)
    assert live["data"]["LOG_LEVEL"] == "debug"
    # One plan when no one took the Lease since the plan began; planned again under the Lease
    # when another deploy took it meanwhile.
    assert set(kube.dry_runs.values()) == {plans}
    assert kube.dry_runs["ConfigMap/llm-cost-ops-config"] == plans


# --- rollback ----------------------------------------------------------------------------------


def test_rollback_restores_the_previous_release(cluster, dev):
    _, a = cluster.deploy(dev, "run-a")
    _, b = cluster.deploy(_with_api_image(dev, "2.0.0"), "run-b")
    assert cluster.api_image().endswith(":2.0.0")

    request, target = rollback_request(cluster.ledger(), "run-rollback", OPTIONS, DEV)
    result, release = cluster.execute(request)

    assert target == a
    assert cluster.api_image() == _image(dev)
    assert deployment_health(cluster.server.read("apps/v1", "Deployment", API, DEV)).state == "healthy"
    assert (release.revision, release.operation, release.rollback_of) == (3, "rollback", a.revision)
    assert (release.digest, release.images) == (a.digest, a.images)
    assert _outcomes(result)[f"Deployment/{DEV}/{API}"] == "configured"
    assert b.revision == 2


def test_rollback_after_a_failed_release_targets_the_last_healthy_one(cluster, dev):
    _, a = cluster.deploy(dev, "run-a")
    cluster.sim.fail_image(":2.0.0-bad", "crashloop")
    with pytest.raises(RolloutFailed):
        cluster.deploy(_with_api_image(dev, "2.0.0-bad"), "run-b")

    request, target = rollback_request(cluster.ledger(), "run-rollback", OPTIONS, DEV)

    assert target == a
    assert (request.operation, request.rollback_of) == ("rollback", 1)
    assert (request.digest, request.bundle_text) == (dev.digest, dev.text)


def test_rollback_from_a_crash_looping_release_rolls_out(cluster, dev):
    cluster.deploy(dev, "run-a")
    cluster.sim.fail_image(":2.0.0-bad", "crashloop")
    with pytest.raises(RolloutFailed):
        cluster.deploy(_with_api_image(dev, "2.0.0-bad"), "run-b")

    request, _ = rollback_request(cluster.ledger(), "run-rollback", OPTIONS, DEV)
    _, release = cluster.execute(request)

    assert (release.revision, release.operation, release.rollback_of) == (3, "rollback", 1)
    assert cluster.api_image() == _image(dev)


def test_rollback_without_a_target_is_release_not_found(cluster, dev):
    cluster.deploy(dev, "run-a")
    with pytest.raises(ReleaseNotFound, match="dev: no healthy release in the ledger to roll back to"):
        rollback_request(cluster.ledger(), "run-rollback", OPTIONS, DEV)
    with pytest.raises(ReleaseNotFound, match="dev: revision 7 is not in the ledger"):
        rollback_request(cluster.ledger(), "run-rollback", OPTIONS, DEV, to_revision=7)


# --- promotion gate ----------------------------------------------------------------------------


def test_promotion_gate(cluster, render_overlays, prod):
    staging = render_overlays["staging"]
    ledger = cluster.ledger("staging", STAGING)
    wanted = _image(prod)

    with pytest.raises(PromotionBlocked, match="staging has no release") as blocked:
        check_promotion(ledger, prod.images())
    assert wanted in str(blocked.value)

    cluster.deploy(_with_api_image(staging, "1.4.1"), "run-staging-1")
    with pytest.raises(PromotionBlocked) as blocked:
        check_promotion(ledger, prod.images())
    message = str(blocked.value)
    assert "staging runs ['ghcr.io/llm-cost-ops/llm-cost-ops:1.4.1'] (r1)" in message
    assert wanted in message

    _, release = cluster.deploy(staging, "run-staging-2")
    assert check_promotion(ledger, prod.images()) == release
    assert release.revision == 2


def test_promotion_gate_blocks_on_a_failed_latest_release(cluster, render_overlays, prod):
    staging = render_overlays["staging"]
    cluster.deploy(staging, "run-staging-1")
    cluster.sim.fail_image(":9.9.9", "crashloop")
    with pytest.raises(RolloutFailed):
        cluster.deploy(_with_api_image(staging, "9.9.9"), "run-staging-2")

    with pytest.raises(PromotionBlocked, match="staging latest release r2 is failed"):
        check_promotion(cluster.ledger("staging", STAGING), prod.images())


def test_promotion_gate_recognises_digest_pinned_images_from_a_registry_with_a_port(cluster):
    cluster.server.seed({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": STAGING}})
    ledger = cluster.ledger("staging", STAGING)
    ledger.record(Release("staging", "sha256:x", "", ["registry.local:5000/llm-cost-ops:1.4.2"], "healthy"))

    with pytest.raises(PromotionBlocked):
        check_promotion(ledger, ["registry.local:5000/llm-cost-ops@sha256:" + "0" * 64])


# --- the ledger --------------------------------------------------------------------------------


def test_ledger_keeps_the_last_ten_releases(cluster):
    cluster.server.seed({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": DEV}})
    ledger = cluster.ledger()

    recorded = [
        ledger.record(Release("dev", f"sha256:{n}", f"bundle {n}", [], "healthy", run_id=f"run-{n}"))
        for n in range(1, 13)
    ]

    assert [r.revision for r in recorded] == list(range(1, 13))
    kept = ledger.releases()
    assert [r.revision for r in kept] == list(range(3, 13))
    assert [r.run_id for r in kept] == [f"run-{n}" for n in range(3, 13)]
    assert kept[-1].bundle == "bundle 12"
    names = sorted(s["metadata"]["name"] for s in cluster.server.objects("v1", "Secret", DEV))
    assert names == sorted(f"llm-cost-ops-ops.release.v{n}" for n in range(3, 13))
    assert ledger.record(Release("dev", "sha256:13", "", [], "failed")).revision == 13
    assert [r.revision for r in ledger.releases()] == list(range(4, 14))
