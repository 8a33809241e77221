"""Drift and self-heal on the real control plane (issues 16 and 18).

Cases:
- an environment variable another field manager added to the API container (as `kubectl set env`
  does, with a real server-side apply by another manager) is reported by drift, naming the manager
  and the field, though the force dry-run keeps it;
- heal removes it (an explicit JSON patch) and takes back, with force, a ConfigMap key another
  manager changed (a heal without force would end in FieldConflict); drift is clean afterwards;
- after a rollback, heal re-applies the running (rolled-back) release, never the newer bundle.
"""

from __future__ import annotations

import pytest

from llm_cost_ops_ops.k8s.client import Kube, load_api_client
from llm_cost_ops_ops.k8s.drift import detect_drift
from llm_cost_ops_ops.k8s.errors import RolloutFailed
from llm_cost_ops_ops.k8s.heal import execute_heal
from llm_cost_ops_ops.k8s.ledger import ReleaseLedger
from llm_cost_ops_ops.k8s.releases import ReleaseRequest, execute_release, rollback_request
from tests.cluster.conftest import OPTIONS, in_namespace, with_api_image

pytestmark = [pytest.mark.cluster, pytest.mark.e2e]

API = "llm-cost-ops"


@pytest.fixture
def deployed(kube, render_overlays, cluster_namespace):
    bundle = in_namespace(render_overlays["dev"], cluster_namespace)
    execute_release(kube, ReleaseRequest.for_bundle(bundle, cluster_namespace, "deploy-1", OPTIONS))
    return bundle


def _container(kube, namespace):
    live = kube.get("apps/v1", "Deployment", API, namespace)
    return live["spec"]["template"]["spec"]["containers"][0]


def test_drift_sees_another_managers_addition_and_heal_removes_it(cluster_kubeconfig, kube, deployed):
    namespace = deployed.namespaces()[0]
    other = Kube(load_api_client(str(cluster_kubeconfig)), field_manager="kubectl-set")
    other.apply(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": API, "namespace": namespace},
            "spec": {
                "template": {
                    "spec": {"containers": [{"name": API, "env": [{"name": "DEBUG_BACKDOOR", "value": "1"}]}]}
                }
            },
        }
    )
    other.apply(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "llm-cost-ops-config", "namespace": namespace},
            "data": {"LOG_LEVEL": "trace"},
        },
        force=True,
    )
    ledger = ReleaseLedger(kube, "dev", namespace)

    report = detect_drift(kube, "dev", namespace, ledger.last_healthy())

    drifted = {d.ref: d.fields for d in report.drifted}
    assert (
        f"spec.template.spec.containers[{API}].env[DEBUG_BACKDOOR] (added by kubectl-set)"
        in drifted[f"Deployment/{namespace}/{API}"]
    )
    assert "data.LOG_LEVEL" in drifted[f"ConfigMap/{namespace}/llm-cost-ops-config"]

    healed = execute_heal(kube, ledger, namespace, "heal-1", OPTIONS)

    assert healed.removed == {
        f"Deployment/{namespace}/{API}": [
            f"spec.template.spec.containers[{API}].env[DEBUG_BACKDOOR] (added by kubectl-set)"
        ]
    }
    assert "DEBUG_BACKDOOR" not in {e["name"] for e in _container(kube, namespace).get("env") or []}
    assert kube.get("v1", "ConfigMap", "llm-cost-ops-config", namespace)["data"]["LOG_LEVEL"] == "debug"
    assert detect_drift(kube, "dev", namespace, ledger.last_healthy()).clean


def test_heal_after_a_rollback_keeps_the_rolled_back_release(kube, deployed):
    namespace = deployed.namespaces()[0]
    good_image = _container(kube, namespace)["image"]
    with pytest.raises(RolloutFailed):
        execute_release(
            kube,
            ReleaseRequest.for_bundle(
                with_api_image(deployed, "2.0.0-crashloop"), namespace, "deploy-2", OPTIONS
            ),
        )
    ledger = ReleaseLedger(kube, "dev", namespace)
    request, _ = rollback_request(ledger, "rollback-1", OPTIONS, namespace)
    execute_release(kube, request)

    healed = execute_heal(kube, ledger, namespace, "heal-1", OPTIONS)

    assert healed.target.operation == "rollback"
    assert _container(kube, namespace)["image"] == good_image
