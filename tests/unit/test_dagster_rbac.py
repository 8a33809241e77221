"""The Dagster service account's RBAC (deploy/rbac).

Cases: the manifests render with kustomize without warnings; they pass the same strict schema check
and the least-privilege RBAC policy rule as the platform bundle (no ClusterRole, no wildcard);
one Role + RoleBinding per environment namespace, bound to dagster/llm-cost-ops-ops; the Role grants
every verb the deploy engine uses on every kind it applies or prunes, and leases, jobs, pod logs.
"""

from __future__ import annotations

import pytest

from llm_cost_ops_ops.bundles.findings import errors
from llm_cost_ops_ops.bundles.policy import rbac_is_least_privilege
from llm_cost_ops_ops.bundles.render import render_overlay
from llm_cost_ops_ops.bundles.schema import check_schema
from llm_cost_ops_ops.k8s.waves import PRUNABLE_KINDS

pytestmark = pytest.mark.unit

# Plural resource names of the kinds the engine prunes (as discovery would report them).
PLURALS = {
    "NetworkPolicy": "networkpolicies", "Ingress": "ingresses", "PodDisruptionBudget": "poddisruptionbudgets",
    "HorizontalPodAutoscaler": "horizontalpodautoscalers", "Deployment": "deployments",
    "StatefulSet": "statefulsets", "Service": "services", "ConfigMap": "configmaps", "Secret": "secrets",
    "PersistentVolumeClaim": "persistentvolumeclaims", "RoleBinding": "rolebindings", "Role": "roles",
    "ServiceAccount": "serviceaccounts", "ServiceMonitor": "servicemonitors",
}  # fmt: skip


@pytest.fixture(scope="module")
def rbac(project_root):
    return render_overlay("rbac", project_root / "deploy" / "rbac", root=project_root)


def _granted(role: dict) -> dict[tuple[str, str], set[str]]:
    granted: dict[tuple[str, str], set[str]] = {}
    for rule in role["rules"]:
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                granted.setdefault((group, resource), set()).update(rule["verbs"])
    return granted


def test_renders_and_passes_schema_and_rbac_policy(rbac, env_specs):
    assert rbac.warnings == ()
    assert errors(check_schema(rbac, "1.30")) == []
    assert list(rbac_is_least_privilege(rbac, env_specs["prod"])) == []
    assert not rbac.of_kind("ClusterRole", "ClusterRoleBinding")


def test_one_role_and_binding_per_environment_namespace(rbac, env_specs):
    namespaces = {spec.namespace for spec in env_specs.values()}
    assert {r.namespace for r in rbac.of_kind("Role")} == namespaces
    bindings = rbac.of_kind("RoleBinding")
    assert {b.namespace for b in bindings} == namespaces
    for binding in bindings:
        assert binding.body["subjects"] == [
            {"kind": "ServiceAccount", "name": "llm-cost-ops-ops", "namespace": "dagster"}
        ]


def test_role_grants_what_the_engine_uses(rbac):
    granted = _granted(rbac.of_kind("Role")[0].body)
    for api_version, kind in PRUNABLE_KINDS:
        group = api_version.rpartition("/")[0].split(".k8s.io")[0] if "/" in api_version else ""
        group = {"rbac.authorization": "rbac.authorization.k8s.io", "networking": "networking.k8s.io"}.get(
            group, group
        )
        assert {"get", "list", "patch", "delete"} <= granted[(group, PLURALS[kind])], kind
    assert {"get", "create", "update"} <= granted[("coordination.k8s.io", "leases")]
    assert {"create", "delete"} <= granted[("", "secrets")]  # the release ledger
    assert {"create", "get"} <= granted[("batch", "jobs")]
    assert granted[("", "pods/log")] == {"get"}
    assert all("*" not in verbs for verbs in granted.values())
