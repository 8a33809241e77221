"""Taking over an environment that `kubectl apply -k` built (issue 18), on the real control plane.

Cases:
- after a client-side `kubectl apply -k manifests/overlays/prod`, a plain deploy is refused by the
  dry run with FieldConflict naming `kubectl-client-side-apply` (nothing written), as the real
  server canonicalises quantities (`1000m` is stored as `1`) and defaults fields in atomic lists;
- adoption (DeployOptions.adopt) applies every object with force: each is reported `adopted` (or
  `created`) with what it took over (`took over N fields from kubectl-client-side-apply, the
  last-applied-configuration record`), the last-applied annotation and the client-side manager
  are gone, and the first release is recorded;
- afterwards a plain redeploy is a no-op: every object `unchanged`, 0 writes in the audit log.
"""

from __future__ import annotations

import dataclasses
import subprocess

import pytest

from llm_cost_ops_ops.bundles.render import kubectl_binary
from llm_cost_ops_ops.k8s.adopt import LAST_APPLIED, client_side_managers
from llm_cost_ops_ops.k8s.errors import FieldConflict
from llm_cost_ops_ops.k8s.ledger import ReleaseLedger
from llm_cost_ops_ops.k8s.releases import ReleaseRequest, execute_release
from tests.cluster.conftest import OPTIONS

pytestmark = [pytest.mark.cluster, pytest.mark.e2e]

PROD = "llm-cost-ops-prod"


def test_adopting_a_kubectl_applied_prod(control_plane, kube, render_overlays, project_root):
    prod = render_overlays["prod"]
    applied = subprocess.run(
        [
            kubectl_binary(),
            "--kubeconfig",
            str(control_plane.kubeconfig),
            "apply",
            "-k",
            str(project_root / "manifests/overlays/prod"),
        ],
        capture_output=True,
        text=True,
    )
    # kubectl cannot apply the ServiceMonitor without its CRD (unless an earlier test installed it).
    assert applied.returncode == 0 or "ServiceMonitor" in applied.stderr, applied.stderr
    deployment = kube.get("apps/v1", "Deployment", "llm-cost-ops", PROD)
    assert LAST_APPLIED in deployment["metadata"]["annotations"]
    request = ReleaseRequest.for_bundle(prod, PROD, "plain-1", OPTIONS)
    mark = control_plane.audit_mark()

    with pytest.raises(FieldConflict, match="kubectl-client-side-apply") as conflict:
        execute_release(kube, request)
    # Quantities are sent as the server stores them: `1000m` against a stored `1` is no conflict;
    # what remains is the StatefulSet's atomic volumeClaimTemplates, defaulted by the server.
    assert "cpu" not in str(conflict.value) and "memory" not in str(conflict.value), conflict.value
    assert "volumeClaimTemplates" in str(conflict.value)
    assert [
        e for e in control_plane.audit(mark) if e.is_write and e.resource not in ("namespaces", "leases")
    ] == []

    adopt = dataclasses.replace(OPTIONS, adopt=True)
    result, release = execute_release(kube, ReleaseRequest.for_bundle(prod, PROD, "adopt-1", adopt))

    actions = {
        o.ref: o.action for o in result.outcomes() if not o.ref.startswith(("ServiceMonitor/", "Namespace/"))
    }
    assert set(actions.values()) <= {"adopted", "created"} and "adopted" in actions.values()
    details = {o.ref: o.detail for o in result.outcomes() if o.action == "adopted"}
    taken = details["Deployment/llm-cost-ops-prod/llm-cost-ops"]
    assert taken.startswith("took over ") and " fields from kubectl-client-side-apply" in taken, taken
    assert int(taken.removeprefix("took over ").split()[0]) > 10, taken  # image, env, probes, ...
    assert taken.endswith("the last-applied-configuration record"), taken
    assert all(d.startswith("took over ") for d in details.values()), details
    deployment = kube.get("apps/v1", "Deployment", "llm-cost-ops", PROD)
    assert LAST_APPLIED not in (deployment["metadata"].get("annotations") or {})
    assert client_side_managers(deployment) == set()
    assert release.revision == 1 and ReleaseLedger(kube, "prod", PROD).latest().run_id == "adopt-1"

    mark = control_plane.audit_mark()
    again, _ = execute_release(kube, ReleaseRequest.for_bundle(prod, PROD, "plain-2", OPTIONS))

    assert {o.action for o in again.outcomes() if not o.ref.startswith("ServiceMonitor/")} == {"unchanged"}
    assert [e for e in control_plane.audit(mark) if e.is_write and e.resource != "leases"] == []
