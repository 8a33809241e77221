"""The deploy engine on the real control plane: kube-apiserver's admission and validation, the real
Deployment/StatefulSet/ReplicaSet controllers, the scheduler and KWOK's pods decide what happens.

Each test deploys the real rendered bundles into namespaces of its own; requests are counted from
the API server's audit log (user `llm-cost-ops-ops`).

Cases:
- first deploy of dev, staging and prod: non-dry-run writes follow the waves; the PostgreSQL pod was
  Ready (KWOK's status patch, in the audit log) before the API Deployment was first written; every
  object `created`, the ServiceMonitor `skipped` with a warning while its CRD is absent;
- the ServiceMonitor is applied once the Prometheus Operator's CRD is installed;
- a no-op redeploy writes nothing but the Lease (audit log), every object `unchanged`;
- an image change rolls out through the real Deployment controller (revision 2, new pods Ready);
- crash loop, image pull, OOM-kill and never-ready pods fail fast naming pod, container and reason;
  `ProgressDeadlineExceeded` as the real Deployment controller sets it;
- a bundle the real API server rejects (validation) is refused by the dry run with nothing written
  and the namespace made for the dry run removed again;
- prune and protected prune (PVCs and Secrets kept unless confirmed);
- the Lease: two concurrent deploys of one environment never interleave; a deploy killed mid-wave
  (its process gone, its Lease left behind and expired) converges when run again;
- rollback to the last healthy release; the promotion gate.
"""

from __future__ import annotations

import json
import re
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from kubernetes import client

from llm_cost_ops_ops.k8s.client import Kube, load_api_client
from llm_cost_ops_ops.k8s.engine import DeployOptions
from llm_cost_ops_ops.k8s.errors import (
    DryRunRejected,
    LeaseHeld,
    PromotionBlocked,
    RolloutFailed,
    RolloutTimeout,
)
from llm_cost_ops_ops.k8s.health import deployment_health
from llm_cost_ops_ops.k8s.lease import LEASE_NAME, EnvironmentLease
from llm_cost_ops_ops.k8s.ledger import Release, ReleaseLedger
from llm_cost_ops_ops.k8s.releases import ReleaseRequest, check_promotion, execute_release, rollback_request
from llm_cost_ops_ops.k8s.wait import WaitTiming
from tests.cluster.conftest import OPTIONS, in_namespace, wait_for, with_api_image
from tests.control_plane.harness import ControlPlane

pytestmark = [pytest.mark.cluster, pytest.mark.e2e]

API = "llm-cost-ops"
SERVICE_MONITOR_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "servicemonitors.monitoring.coreos.com"},
    "spec": {
        "group": "monitoring.coreos.com",
        "names": {
            "kind": "ServiceMonitor",
            "listKind": "ServiceMonitorList",
            "plural": "servicemonitors",
            "singular": "servicemonitor",
        },
        "scope": "Namespaced",
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "schema": {
                    "openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
                },
            }
        ],
    },
}


def deploy(kube: Kube, bundle, run_id: str, options: DeployOptions = OPTIONS, **kwargs: Any):
    request = ReleaseRequest.for_bundle(bundle, bundle.namespaces()[0], run_id, options)
    return execute_release(kube, request, **kwargs)


def outcomes(result) -> dict[str, str]:
    """Each object's outcome, the ServiceMonitor left out: whether its CRD is installed depends on
    which tests ran before in the session (test_service_monitor_is_applied_once_its_crd_is_installed)."""
    return {o.ref: o.action for o in result.outcomes() if not o.ref.startswith("ServiceMonitor/")}


def api_image(kube: Kube, namespace: str) -> str:
    return kube.get("apps/v1", "Deployment", API, namespace)["spec"]["template"]["spec"]["containers"][0][
        "image"
    ]


def bundle_writes(plane: ControlPlane, mark: int) -> list[tuple[str, str, str]]:
    """(verb, resource, name) of the test user's state-changing requests since `mark`."""
    return [(e.verb, e.resource, e.name) for e in plane.audit(mark) if e.is_write]


@pytest.fixture
def dev_ns(render_overlays, cluster_namespace):
    return in_namespace(render_overlays["dev"], cluster_namespace)


# --- first deploy ---------------------------------------------------------------------------------


@pytest.mark.parametrize("environment", ["dev", "staging", "prod"])
def test_first_deploy_applies_in_wave_order_with_the_database_ready_first(
    control_plane, kube, render_overlays, cluster_namespace, environment
):
    bundle = in_namespace(render_overlays[environment], cluster_namespace)
    mark = control_plane.audit_mark()

    result, release = deploy(kube, bundle, "run-1")

    events = control_plane.audit(mark, user="")
    mine = [e for e in events if e.user == "llm-cost-ops-ops" and e.is_write and e.verb == "patch"]
    order = [
        (e.resource, e.name) for e in mine if e.resource not in ("leases", "secrets") or e.name != LEASE_NAME
    ]
    assert order[0] == ("namespaces", cluster_namespace)

    def first(*names):
        return min(i for i, t in enumerate(order) if t[0] in names or t in names)

    def last(*names):
        return max(i for i, t in enumerate(order) if t[0] in names or t in names)

    assert last("serviceaccounts", "roles", "rolebindings") < first("configmaps")
    assert last("persistentvolumeclaims") < first("services")
    assert last("services") < first("statefulsets")
    assert last("statefulsets") < first(("deployments", API))
    assert first("horizontalpodautoscalers", "networkpolicies") > first(("deployments", API))
    # The real kubelet stand-in (KWOK) reported the database pod Ready before the API was written.
    api_write = events.index(
        next(
            e
            for e in events
            if e.user == "llm-cost-ops-ops" and e.is_write and (e.resource, e.name) == ("deployments", API)
        )
    )
    postgres_ready = [
        i
        for i, e in enumerate(events)
        if e.resource == "pods/status"
        and e.name == "postgres-0"
        and e.namespace == cluster_namespace
        and e.verb == "patch"
    ]
    assert postgres_ready and postgres_ready[0] < api_write
    pod = kube.get("v1", "Pod", "postgres-0", cluster_namespace)
    ready_at = next(c["lastTransitionTime"] for c in pod["status"]["conditions"] if c["type"] == "Ready")
    assert ready_at <= events[api_write].received[:19] + "Z"

    assert set(outcomes(result).values()) == {"created"}
    monitor = {o.ref: o for o in result.outcomes()}.get(f"ServiceMonitor/{cluster_namespace}/{API}")
    if monitor is not None and monitor.action == "skipped":
        assert any("no CRD for monitoring.coreos.com/v1 ServiceMonitor" in w for w in result.warnings)
    assert (release.revision, release.outcome) == (1, "healthy")
    assert deployment_health(kube.get("apps/v1", "Deployment", API, cluster_namespace)).state == "healthy"
    assert kube.get("coordination.k8s.io/v1", "Lease", LEASE_NAME, cluster_namespace)["spec"].get(
        "holderIdentity"
    ) in (None, "")


def test_service_monitor_is_applied_once_its_crd_is_installed(
    control_plane, kube, admin, render_overlays, cluster_namespace
):
    bundle = in_namespace(render_overlays["prod"], cluster_namespace)
    extensions = client.ApiextensionsV1Api(admin)
    name = SERVICE_MONITOR_CRD["metadata"]["name"]
    if any(c.metadata.name == name for c in extensions.list_custom_resource_definition().items):
        extensions.delete_custom_resource_definition(name)
        wait_for(
            lambda: (
                not any(c.metadata.name == name for c in extensions.list_custom_resource_definition().items)
            ),
            "CRD removed",
        )
    logged: list[str] = []
    first, _ = deploy(kube, bundle, "run-1", warn=logged.append)
    assert any("no CRD for monitoring.coreos.com/v1 ServiceMonitor" in w for w in logged)  # in the run's log
    monitor = {o.ref: o for o in first.outcomes()}[f"ServiceMonitor/{cluster_namespace}/{API}"]
    assert (monitor.action, monitor.detail) == ("skipped", "CRD not installed")
    assert any("no CRD for monitoring.coreos.com/v1 ServiceMonitor" in w for w in first.warnings)
    try:
        extensions.create_custom_resource_definition(SERVICE_MONITOR_CRD)
    except client.ApiException as exc:
        if exc.status != 409:
            raise
    wait_for(
        lambda: any(
            c.type == "Established" and c.status == "True"
            for c in (
                extensions.read_custom_resource_definition(
                    SERVICE_MONITOR_CRD["metadata"]["name"]
                ).status.conditions
                or []
            )
        ),
        "CRD established",
    )
    fresh = Kube(load_api_client(str(control_plane.kubeconfig)))  # a new run discovers afresh

    result, release = deploy(fresh, bundle, "run-2")

    assert {o.ref: o.action for o in result.outcomes()}[
        f"ServiceMonitor/{cluster_namespace}/{API}"
    ] == "created"
    assert result.warnings == []
    assert fresh.get("monitoring.coreos.com/v1", "ServiceMonitor", API, cluster_namespace) is not None
    assert release.revision == 2


# --- redeploys and rollouts -----------------------------------------------------------------------


def test_no_op_redeploy_writes_nothing_but_the_lease(control_plane, kube, dev_ns):
    _, first = deploy(kube, dev_ns, "run-1")
    mark = control_plane.audit_mark()

    result, release = deploy(kube, dev_ns, "run-2")

    writes = bundle_writes(control_plane, mark)
    assert [w for w in writes if w[1] != "leases"] == []
    assert result.writes == 0
    assert set(outcomes(result).values()) == {"unchanged"}
    assert release == first
    assert [r.revision for r in ReleaseLedger(kube, "dev", dev_ns.namespaces()[0]).releases()] == [1]


def test_image_change_rolls_out_through_the_deployment_controller(control_plane, kube, dev_ns):
    namespace = dev_ns.namespaces()[0]
    deploy(kube, dev_ns, "run-1")
    changed = with_api_image(dev_ns, "1.5.0")
    mark = control_plane.audit_mark()

    result, release = deploy(kube, changed, "run-2")

    assert {r: a for r, a in outcomes(result).items() if a != "unchanged"} == {
        f"Deployment/{namespace}/{API}": "configured"
    }
    assert [w for w in bundle_writes(control_plane, mark) if w[1] not in ("leases", "secrets")] == [
        ("patch", "deployments", API)
    ]
    live = kube.get("apps/v1", "Deployment", API, namespace)
    assert live["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "2"
    assert deployment_health(live).state == "healthy"
    pods = [
        p
        for p in kube.list("v1", "Pod", namespace, label_selector="app.kubernetes.io/name=llm-cost-ops")
        if not p["metadata"].get("deletionTimestamp")
    ]
    assert pods and all(p["spec"]["containers"][0]["image"].endswith(":1.5.0") for p in pods)
    assert (release.revision, release.outcome) == (2, "healthy")


@pytest.mark.parametrize(
    ("tag", "reason"),
    [
        ("2.0.0-crashloop", "CrashLoopBackOff"),
        ("2.0.0-imagepull", "(ErrImagePull|ImagePullBackOff)"),
        ("2.0.0-oomkilled", "OOMKilled"),
    ],
)
def test_failing_pods_fail_the_rollout_fast(control_plane, kube, dev_ns, tag, reason):
    namespace = dev_ns.namespaces()[0]
    deploy(kube, dev_ns, "run-1")
    options = DeployOptions(rollout=WaitTiming(120, 0.5, log_lines=3), database=OPTIONS.database)
    started = time.monotonic()

    with pytest.raises(RolloutFailed) as failed:
        deploy(kube, with_api_image(dev_ns, tag), "run-2", options)

    assert not isinstance(failed.value, RolloutTimeout)
    assert time.monotonic() - started < 40
    message = str(failed.value)
    assert message.startswith(f"Deployment {namespace}/{API} rollout failed: "), message
    assert re.search(f"pod {API}-[a-z0-9]+-[a-z0-9]+ container llm-cost-ops: .*{reason}", message), message
    latest = ReleaseLedger(kube, "dev", namespace).latest()
    assert (latest.revision, latest.outcome) == (2, "failed")


def test_never_ready_pods_end_in_progress_deadline_exceeded(kube, dev_ns):
    namespace = dev_ns.namespaces()[0]
    deploy(kube, dev_ns, "run-1")

    def short_deadline(body: dict) -> dict:
        if body["kind"] == "Deployment" and body["metadata"]["name"] == API:
            body["spec"]["progressDeadlineSeconds"] = 3
            body["spec"]["template"]["spec"]["containers"][0]["image"] = (
                body["spec"]["template"]["spec"]["containers"][0]["image"].rsplit(":", 1)[0] + ":2.0.0-stuck"
            )
        return body

    with pytest.raises(RolloutFailed, match="ProgressDeadlineExceeded") as failed:
        deploy(kube, in_namespace(dev_ns, namespace, short_deadline), "run-2")

    assert not isinstance(failed.value, RolloutTimeout)
    live = kube.get("apps/v1", "Deployment", API, namespace)
    progressing = next(c for c in live["status"]["conditions"] if c["type"] == "Progressing")
    assert (progressing["status"], progressing["reason"]) == ("False", "ProgressDeadlineExceeded")


def test_never_ready_pods_time_out_at_the_deadline(kube, dev_ns):
    deploy(kube, dev_ns, "run-1")
    options = DeployOptions(rollout=WaitTiming(6, 0.5), database=OPTIONS.database)

    with pytest.raises(RolloutTimeout):
        deploy(kube, with_api_image(dev_ns, "2.0.0-stuck"), "run-2", options)


# --- rejection, prune -----------------------------------------------------------------------------


def test_bundle_the_api_server_rejects_is_refused_with_nothing_written(control_plane, kube, dev_ns):
    namespace = dev_ns.namespaces()[0]

    def invalid(body: dict) -> dict:
        if body["kind"] == "Service" and body["metadata"]["name"] == API:
            body["spec"]["ports"][0]["port"] = 70000  # validation: a port is 1-65535
        return body

    mark = control_plane.audit_mark()
    with pytest.raises(DryRunRejected) as rejected:
        deploy(kube, in_namespace(dev_ns, namespace, invalid), "run-1")

    assert f"Service/{namespace}/{API}" in str(rejected.value)
    assert "65535" in str(rejected.value)
    writes = bundle_writes(control_plane, mark)
    assert {w[1] for w in writes} <= {"namespaces"}  # only the dry run's namespace, created and deleted
    wait_for(
        lambda: (
            kube.get("v1", "Namespace", namespace) is None
            or kube.get("v1", "Namespace", namespace)["status"].get("phase") == "Terminating"
        ),
        "namespace removed",
    )


def test_prune_and_protected_prune(control_plane, kube, dev_ns):
    namespace = dev_ns.namespaces()[0]
    deploy(kube, dev_ns, "run-1")
    smaller = in_namespace(
        dev_ns,
        namespace,
        lambda b: (
            None
            if (b["kind"], b["metadata"]["name"])
            in {
                ("Ingress", API),
                ("PersistentVolumeClaim", "postgres-backup"),
                ("Secret", "llm-cost-ops-secrets"),
            }
            else b
        ),
    )

    result, _ = deploy(kube, smaller, "run-2")

    prune = {o.ref: o.action for o in result.waves[-1].outcomes}
    assert prune == {
        f"Ingress/{namespace}/{API}": "pruned",
        f"PersistentVolumeClaim/{namespace}/postgres-backup": "skipped",
        f"Secret/{namespace}/llm-cost-ops-secrets": "skipped",
    }
    assert kube.get("networking.k8s.io/v1", "Ingress", API, namespace) is None
    assert kube.get("v1", "PersistentVolumeClaim", "postgres-backup", namespace) is not None
    # The StatefulSet's own claim (made by the real controller from volumeClaimTemplates) is never a candidate.
    assert kube.get("v1", "PersistentVolumeClaim", "data-postgres-0", namespace) is not None

    options = DeployOptions(
        rollout=OPTIONS.rollout,
        database=OPTIONS.database,
        confirm_prune=frozenset({"PersistentVolumeClaim", "Secret"}),
    )
    confirmed, _ = deploy(kube, smaller, "run-3", options)

    assert {o.ref: o.action for o in confirmed.waves[-1].outcomes} == {
        f"PersistentVolumeClaim/{namespace}/postgres-backup": "pruned",
        f"Secret/{namespace}/llm-cost-ops-secrets": "pruned",
    }
    # The database pod still mounts the claim: the real pvc-protection finalizer keeps it
    # Terminating until no pod uses it (the double deleted it at once).
    claim = kube.get("v1", "PersistentVolumeClaim", "postgres-backup", namespace)
    assert claim is None or claim["metadata"].get("deletionTimestamp")
    assert kube.get("v1", "PersistentVolumeClaim", "data-postgres-0", namespace) is not None
    assert [r.revision for r in ReleaseLedger(kube, "dev", namespace).releases()] == [1, 2, 3]


# --- the Lease ------------------------------------------------------------------------------------


def test_two_concurrent_deploys_of_one_environment_never_interleave(control_plane, kube, dev_ns):
    namespace = dev_ns.namespaces()[0]
    deploy(kube, dev_ns, "run-1")
    bundles = {"run-b": with_api_image(dev_ns, "2.0.0"), "run-c": with_api_image(dev_ns, "3.0.0")}
    start = threading.Barrier(len(bundles))
    results: dict[str, Any] = {}

    def run(run_id: str) -> None:
        own = Kube(load_api_client(str(control_plane.kubeconfig)))
        start.wait()
        try:
            results[run_id] = deploy(own, bundles[run_id], run_id)[1]
        except Exception as exc:
            results[run_id] = exc

    threads = [threading.Thread(target=run, args=(run_id,)) for run_id in bundles]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=180)

    succeeded = {k for k, v in results.items() if isinstance(v, Release)}
    assert all(isinstance(v, LeaseHeld) for k, v in results.items() if k not in succeeded), results
    assert succeeded
    releases = ReleaseLedger(kube, "dev", namespace).releases()
    assert [r.revision for r in releases] == list(range(1, 2 + len(succeeded)))
    assert {r.run_id for r in releases[1:]} == succeeded
    assert api_image(kube, namespace).endswith(":2.0.0" if releases[-1].run_id == "run-b" else ":3.0.0")


DEPLOY_AND_DIE = """
import sys
sys.path.insert(0, {root!r})
from llm_cost_ops_ops.bundles.model import RenderedBundle
from llm_cost_ops_ops.k8s.client import Kube, load_api_client
from llm_cost_ops_ops.k8s.releases import ReleaseRequest, execute_release
from tests.cluster.conftest import OPTIONS
bundle = RenderedBundle.from_text("dev", open({bundle!r}).read())
request = ReleaseRequest.for_bundle(bundle, {namespace!r}, "killed-run", OPTIONS, lease_seconds=15)
execute_release(Kube(load_api_client({kubeconfig!r})), request)
"""


@pytest.mark.slow
def test_deploy_killed_mid_wave_converges_when_run_again(control_plane, kube, dev_ns, tmp_path):
    import os
    import signal
    import subprocess
    import sys
    from pathlib import Path

    namespace = dev_ns.namespaces()[0]
    bundle_file = tmp_path / "bundle.yaml"
    bundle_file.write_text(dev_ns.text)
    root = Path(__file__).resolve().parents[2]
    script = DEPLOY_AND_DIE.format(
        root=str(root), bundle=str(bundle_file), namespace=namespace, kubeconfig=str(control_plane.kubeconfig)
    )
    # The child is killed with SIGKILL: its temporary files (the client's discovery cache) go
    # under tmp_path, which pytest removes.
    child = subprocess.Popen(
        [sys.executable, "-c", script], start_new_session=True, env={**os.environ, "TMPDIR": str(tmp_path)}
    )
    try:
        # Killed while waiting for the database wave: the StatefulSet is written, the API is not.
        wait_for(
            lambda: kube.get("apps/v1", "StatefulSet", "postgres", namespace),
            "the database wave",
            timeout=60,
            poll=0.05,
        )
        os.killpg(child.pid, signal.SIGKILL)
        child.wait(10)
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()
    lease = kube.get("coordination.k8s.io/v1", "Lease", LEASE_NAME, namespace)
    assert lease["spec"]["holderIdentity"] == "killed-run"
    with pytest.raises(LeaseHeld):
        deploy(kube, dev_ns, "too-soon")
    time.sleep(16)  # the dead run's Lease expires

    result, release = deploy(kube, dev_ns, "run-2")

    assert release.healthy and release.run_id == "run-2"
    assert deployment_health(kube.get("apps/v1", "Deployment", API, namespace)).state == "healthy"
    assert json.dumps(outcomes(result))  # every object accounted for
    assert kube.get("coordination.k8s.io/v1", "Lease", LEASE_NAME, namespace)["spec"].get(
        "holderIdentity"
    ) in (None, "")


def test_expired_lease_is_taken_over(kube, dev_ns):
    namespace = dev_ns.namespaces()[0]
    deploy(kube, dev_ns, "run-1")
    an_hour_ago = datetime.now(UTC) - timedelta(hours=1)
    EnvironmentLease(kube, namespace, "crashed-run", 60, now=lambda: an_hour_ago).acquire()

    _, release = deploy(kube, with_api_image(dev_ns, "2.0.0"), "run-2")

    assert (release.revision, release.run_id) == (2, "run-2")


# --- rollback and promotion -----------------------------------------------------------------------


def test_rollback_after_a_crash_looping_release(control_plane, kube, dev_ns):
    namespace = dev_ns.namespaces()[0]
    deploy(kube, dev_ns, "run-1")
    with pytest.raises(RolloutFailed):
        deploy(kube, with_api_image(dev_ns, "2.0.0-crashloop"), "run-2")
    ledger = ReleaseLedger(kube, "dev", namespace)
    request, target = rollback_request(ledger, "run-3", OPTIONS, namespace)

    _result, release = execute_release(kube, request)

    assert target.revision == 1
    assert (release.revision, release.operation, release.rollback_of, release.outcome) == (
        3,
        "rollback",
        1,
        "healthy",
    )
    assert api_image(kube, namespace) == next(i for i in dev_ns.images() if "/llm-cost-ops:" in i)
    live = kube.get("apps/v1", "Deployment", API, namespace)
    assert deployment_health(live).state == "healthy"


def test_promotion_gate(kube, render_overlays, cluster_namespace):
    staging = in_namespace(render_overlays["staging"], cluster_namespace + "-stg")
    prod = render_overlays["prod"]
    ledger = ReleaseLedger(kube, "staging", staging.namespaces()[0])
    with pytest.raises(PromotionBlocked, match="has no release"):
        check_promotion(ledger, prod.images())
    deploy(kube, with_api_image(staging, "9.9.9"), "stg-1")
    with pytest.raises(PromotionBlocked, match="runs"):
        check_promotion(ledger, prod.images())
    staging_image = next(i for i in staging.images() if "/llm-cost-ops:" in i)
    prod_image = next(i for i in prod.images() if "/llm-cost-ops:" in i)
    deploy(kube, with_api_image(staging, prod_image.rsplit(":", 1)[1]), "stg-2")
    assert check_promotion(ledger, prod.images()).revision == 2
    assert staging_image  # the staging overlay pins its own image
