"""Writes only on the environment's cluster (issue 11), on the real control plane.

Cases:
- a release records the identity of the cluster it ran on (the UID of its kube-system namespace);
- a deploy whose ledger says the environment ran on another cluster (a ledger restored elsewhere) is
  refused before any write, naming both identities;
- a deploy, a teardown and a heal told the environment's cluster (deploy.cluster_id or Dagster's
  record) are refused on any other cluster, with nothing written.
"""

from __future__ import annotations

import pytest

from llm_cost_ops_ops.bundles.model import load_documents
from llm_cost_ops_ops.k8s.heal import execute_heal
from llm_cost_ops_ops.k8s.identity import WrongCluster, cluster_identity
from llm_cost_ops_ops.k8s.ledger import Release, ReleaseLedger
from llm_cost_ops_ops.k8s.releases import ReleaseRequest, execute_release
from llm_cost_ops_ops.k8s.teardown import TeardownOptions, execute_teardown
from tests.cluster.conftest import OPTIONS, in_namespace, with_api_image

pytestmark = [pytest.mark.cluster, pytest.mark.e2e]

ELSEWHERE = "kube-system:00000000-0000-0000-0000-000000000000"


@pytest.fixture
def dev_ns(render_overlays, cluster_namespace):
    return in_namespace(render_overlays["dev"], cluster_namespace)


def test_a_release_records_its_cluster(kube, dev_ns):
    _, release = execute_release(
        kube, ReleaseRequest.for_bundle(dev_ns, dev_ns.namespaces()[0], "run-1", OPTIONS)
    )
    uid = kube.get("v1", "Namespace", "kube-system")["metadata"]["uid"]
    assert release.cluster == f"kube-system:{uid}" == cluster_identity(kube).uid


def test_a_ledger_from_another_cluster_refuses_the_deploy(control_plane, kube, dev_ns):
    namespace = dev_ns.namespaces()[0]
    execute_release(kube, ReleaseRequest.for_bundle(dev_ns, namespace, "run-1", OPTIONS))
    ReleaseLedger(kube, "dev", namespace).record(
        Release("dev", "sha256:x", dev_ns.text, [], "healthy", cluster=ELSEWHERE)
    )
    mark = control_plane.audit_mark()

    with pytest.raises(WrongCluster) as refused:
        execute_release(
            kube, ReleaseRequest.for_bundle(with_api_image(dev_ns, "9.9.9"), namespace, "run-2", OPTIONS)
        )

    message = str(refused.value)
    assert ELSEWHERE in message and cluster_identity(kube).uid in message and control_plane.server in message
    assert [e for e in control_plane.audit(mark) if e.is_write] == []


def test_every_write_path_refuses_a_cluster_it_was_not_told(control_plane, kube, dev_ns):
    namespace = dev_ns.namespaces()[0]
    execute_release(kube, ReleaseRequest.for_bundle(dev_ns, namespace, "run-1", OPTIONS))
    ledger = ReleaseLedger(kube, "dev", namespace)
    mark = control_plane.audit_mark()

    with pytest.raises(WrongCluster):
        execute_release(
            kube,
            ReleaseRequest.for_bundle(with_api_image(dev_ns, "9.9.9"), namespace, "run-2", OPTIONS),
            expected_cluster=ELSEWHERE,
        )
    with pytest.raises(WrongCluster):
        execute_teardown(
            kube,
            "dev",
            namespace,
            load_documents(dev_ns.text),
            TeardownOptions(dry_run=False),
            run_id="t-1",
            expected_cluster=ELSEWHERE,
        )
    with pytest.raises(WrongCluster):
        execute_heal(kube, ledger, namespace, "heal-1", OPTIONS, expected_cluster=ELSEWHERE)

    assert [e for e in control_plane.audit(mark) if e.is_write] == []
    assert kube.get("apps/v1", "Deployment", "llm-cost-ops", namespace) is not None
