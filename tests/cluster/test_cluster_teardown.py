"""Teardown on the real control plane: the real garbage collector removes ReplicaSets and pods of
deleted workloads, pvc-protection holds claims in use, and the real namespace controller empties
and removes a deleted Namespace.

Cases:
- unconfirmed teardown deletes every workload, service, config and identity in reverse wave order
  (audit log), the garbage collector removes their pods, and the volume claims (the bundle's and the
  StatefulSet's) and the Namespace stay; a `teardown` release is recorded and the Lease released;
- confirmed teardown deletes the claims and the Namespace too, and the namespace controller
  finishes the job: the Namespace is gone.
"""

from __future__ import annotations

import pytest

from llm_cost_ops_ops.bundles.model import load_documents
from llm_cost_ops_ops.k8s.ledger import ReleaseLedger
from llm_cost_ops_ops.k8s.releases import ReleaseRequest, execute_release
from llm_cost_ops_ops.k8s.teardown import TeardownOptions, execute_teardown
from llm_cost_ops_ops.k8s.wait import WaitTiming
from tests.cluster.conftest import OPTIONS, in_namespace, wait_for

pytestmark = [pytest.mark.cluster, pytest.mark.e2e]

TIMING = WaitTiming(90, 0.5)


@pytest.fixture
def deployed(kube, render_overlays, cluster_namespace):
    bundle = in_namespace(render_overlays["dev"], cluster_namespace)
    execute_release(kube, ReleaseRequest.for_bundle(bundle, cluster_namespace, "deploy-1", OPTIONS))
    return bundle


def _teardown(kube, bundle, **options):
    return execute_teardown(
        kube,
        "dev",
        bundle.namespaces()[0],
        load_documents(bundle.text),
        TeardownOptions(wait=TIMING, **options),
        run_id="teardown-1",
    )


def test_teardown_keeps_claims_and_namespace(control_plane, kube, deployed):
    namespace = deployed.namespaces()[0]
    assert kube.list("v1", "Pod", namespace)
    mark = control_plane.audit_mark()

    result, release = _teardown(kube, deployed, dry_run=False)

    deletes = [(e.resource, e.name) for e in control_plane.audit(mark) if e.is_write and e.verb == "delete"]

    def first(resource: str, name: str = "") -> int:
        return next(i for i, d in enumerate(deletes) if d[0] == resource and (not name or d[1] == name))

    assert first("networkpolicies") < first("deployments", "llm-cost-ops") < first("statefulsets", "postgres")
    assert first("services") < first("configmaps") < first("serviceaccounts")
    assert not [d for d in deletes if d[0] in ("persistentvolumeclaims", "namespaces")]
    # The real garbage collector removed the ReplicaSets and pods of the deleted workloads.
    wait_for(
        lambda: not kube.list("v1", "Pod", namespace) and not kube.list("apps/v1", "ReplicaSet", namespace),
        "pods and ReplicaSets collected",
    )
    claims = {c["metadata"]["name"] for c in kube.list("v1", "PersistentVolumeClaim", namespace)}
    assert claims == {"postgres-backup", "data-postgres-0"}
    assert kube.get("v1", "Namespace", namespace)["status"]["phase"] == "Active"
    latest = ReleaseLedger(kube, "dev", namespace).latest()
    assert latest == release and (latest.operation, latest.outcome) == ("teardown", "torn-down")
    assert not result.namespace_deleted


def test_confirmed_teardown_removes_the_namespace_through_the_namespace_controller(kube, deployed):
    namespace = deployed.namespaces()[0]

    result, release = _teardown(kube, deployed, dry_run=False, confirm=True)

    assert result.namespace_deleted
    assert release is not None and release.operation == "teardown"
    wait_for(
        lambda: kube.get("v1", "Namespace", namespace) is None,
        "namespace controller removed the Namespace",
        timeout=90,
    )
