"""The control plane harness itself (tests/control_plane/).

Cases:
- the five processes run and answer; the API server enforces RBAC (a user without a binding is
  refused) and signs ServiceAccount tokens (the token controller made `default`'s);
- KWOK's nodes are Ready and a plain pod is scheduled onto one and becomes Running and Ready;
- a PersistentVolumeClaim binds through the real PV binder;
- the audit log records the test user's requests (verb, resource, dry-run) and nobody else's;
- a control plane started in a child process and sent SIGTERM leaves no process (checked with `ps`)
  and no directory behind.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tests.cluster.conftest import wait_for
from tests.control_plane.harness import NODES, ControlPlane

pytestmark = [pytest.mark.cluster, pytest.mark.e2e]


def test_processes_run_and_rbac_is_enforced(control_plane: ControlPlane, admin) -> None:
    for pid in control_plane.pids():
        os.kill(pid, 0)
    assert len(control_plane.pids()) == 5
    # A certificate the CA signed, for a user no RBAC binding names: authenticated, then forbidden.
    stranger = control_plane._pki.issue("stranger", "stranger")
    config = client.Configuration()
    config.host = control_plane.server
    config.ssl_ca_cert = str(control_plane._pki.ca)
    config.cert_file, config.key_file = str(stranger.cert), str(stranger.key)
    with client.ApiClient(config) as api, pytest.raises(ApiException) as refused:
        client.CoreV1Api(api).list_namespaced_pod("default")
    assert refused.value.status == 403
    accounts = client.CoreV1Api(admin).list_namespaced_service_account("kube-system").items
    assert any(sa.metadata.name == "default" for sa in accounts)


def test_pods_run_on_kwok_nodes_and_claims_bind(
    control_plane: ControlPlane, admin, cluster_namespace
) -> None:
    core = client.CoreV1Api(admin)
    ready = [
        n.metadata.name
        for n in core.list_node().items
        if any(c.type == "Ready" and c.status == "True" for c in n.status.conditions)
    ]
    assert sorted(ready) == sorted(NODES)
    core.create_namespace({"metadata": {"name": cluster_namespace}})
    wait_for(lambda: core.list_namespaced_service_account(cluster_namespace).items, "default ServiceAccount")
    core.create_namespaced_persistent_volume_claim(
        cluster_namespace,
        {
            "metadata": {"name": "data"},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
        },
    )
    core.create_namespaced_pod(
        cluster_namespace,
        {
            "metadata": {"name": "web"},
            "spec": {
                "containers": [{"name": "web", "image": "registry.example/web:1.0"}],
                "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "data"}}],
            },
        },
    )

    def running() -> bool:
        pod = core.read_namespaced_pod("web", cluster_namespace)
        ok = {c.type: c.status for c in pod.status.conditions or []}.get("Ready") == "True"
        return pod.status.phase == "Running" and ok and pod.spec.node_name in NODES

    wait_for(running, "pod web Running and Ready on a KWOK node", timeout=30)
    claim = core.read_namespaced_persistent_volume_claim("data", cluster_namespace)
    assert claim.status.phase == "Bound" and claim.spec.storage_class_name == "standard"


def test_audit_log_counts_the_test_users_requests(
    control_plane: ControlPlane, kube, cluster_namespace
) -> None:
    mark = control_plane.audit_mark()
    kube.apply(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": cluster_namespace}}, dry_run=True
    )
    kube.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": cluster_namespace}})
    assert kube.get("v1", "Namespace", cluster_namespace) is not None
    events = [e for e in control_plane.audit(mark) if e.resource == "namespaces"]
    assert [(e.verb, e.dry_run, e.is_write) for e in events] == [
        ("patch", True, False),
        ("patch", False, True),
        ("get", False, False),
    ]
    assert all(e.name == cluster_namespace and e.code in (200, 201) for e in events)


SIGTERM_SCRIPT = textwrap.dedent(
    """
    import sys, time
    sys.path.insert(0, {root!r})
    from tests.control_plane.harness import ControlPlane
    plane = ControlPlane().start()
    print(plane.root, *plane.pids(), flush=True)
    time.sleep(600)
    """
)


def _alive(pid: int) -> bool:
    state = subprocess.run(
        ["ps", "-o", "stat=", "-p", str(pid)], capture_output=True, text=True
    ).stdout.strip()
    return bool(state) and not state.startswith("Z")


@pytest.mark.slow
def test_sigterm_leaves_nothing_behind(control_plane: ControlPlane) -> None:
    root = Path(__file__).resolve().parents[2]
    child = subprocess.Popen(
        [sys.executable, "-c", SIGTERM_SCRIPT.format(root=str(root))], stdout=subprocess.PIPE, text=True
    )
    try:
        line = child.stdout.readline().split()
        assert line, "the child control plane did not start"
        directory, pids = Path(line[0]), [int(p) for p in line[1:]]
        assert directory.is_dir() and len(pids) == 5 and all(_alive(p) for p in pids)
        child.send_signal(signal.SIGTERM)
        child.wait(60)
        deadline = time.monotonic() + 10
        while any(_alive(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert [p for p in pids if _alive(p)] == []
        assert not directory.exists()
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
