"""One broken overlay per check rule (tests/fixtures/broken/<case>), each breaking exactly that rule.

Each fixture takes a real overlay as its base and patches it; it is rendered as that real
environment and all four checks are run.

Cases:
- every fixture's only error findings are of its expected check and rule;
- the expected finding prints the environment in brackets, Kind/namespace/name (or `-` for a
  missing object), the field path, the message and `check/rule`;
- the table covers every schema rule, every rule in policy.RULES, every contract clause and every
  rule of the references check (its could-not-evaluate guard aside);
- every fixture directory is in the table.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import NamedTuple

import pytest

from llm_cost_ops_ops.bundles import contract, policy, references, schema
from llm_cost_ops_ops.bundles.findings import errors

pytestmark = pytest.mark.unit

BROKEN = Path(__file__).resolve().parent.parent / "fixtures" / "broken"


class Case(NamedTuple):
    case: str
    env: str
    check: str
    rule: str
    object_ref: str  # `-` when the finding is about something missing from the bundle
    field: str
    substrings: tuple[str, ...]


CASES = [
    Case("schema-openapi-unknown-field", "staging", "schema", "openapi",
         "Deployment/llm-cost-ops-staging/llm-cost-ops", "spec", ("'replica' was unexpected",)),
    Case("schema-api-not-served", "staging", "schema", "api-not-served",
         "PodDisruptionBudget/llm-cost-ops-staging/postgres", "apiVersion",
         ("policy/v1beta1 PodDisruptionBudget is not served by Kubernetes 1.30", "served: policy-v1")),
    Case("policy-run-as-non-root", "staging", "policy", "run-as-non-root",
         "Deployment/llm-cost-ops-staging/llm-cost-ops", "spec.template.spec.securityContext.runAsNonRoot",
         ("container llm-cost-ops may run as root",)),
    Case("policy-read-only-root-filesystem", "staging", "policy", "read-only-root-filesystem",
         "Deployment/llm-cost-ops-staging/llm-cost-ops",
         "spec.template.spec.containers[0].securityContext.readOnlyRootFilesystem",
         ("must set readOnlyRootFilesystem: true",)),
    Case("policy-drop-all-capabilities", "staging", "policy", "drop-all-capabilities",
         "Deployment/llm-cost-ops-staging/grafana",
         "spec.template.spec.containers[0].securityContext.capabilities.drop",
         ("container grafana must drop ALL capabilities",)),
    Case("policy-seccomp-runtime-default", "staging", "policy", "seccomp-runtime-default",
         "StatefulSet/llm-cost-ops-staging/postgres",
         "spec.template.spec.securityContext.seccompProfile.type",
         ("container postgres has no RuntimeDefault seccomp profile",)),
    Case("policy-requests-and-limits", "staging", "policy", "requests-and-limits",
         "Deployment/llm-cost-ops-staging/prometheus", "spec.template.spec.containers[0].resources.limits",
         ("container prometheus has no limits for cpu, memory",)),
    Case("policy-api-probes", "staging", "policy", "api-probes",
         "Deployment/llm-cost-ops-staging/llm-cost-ops", "spec.template.spec.containers[0].readinessProbe",
         ("API container llm-cost-ops has no readinessProbe",)),
    Case("policy-pinned-image-tag", "staging", "policy", "pinned-image-tag",
         "Deployment/llm-cost-ops-staging/llm-cost-ops", "spec.template.spec.containers[0].image",
         ("'ghcr.io/llm-cost-ops/llm-cost-ops:latest'", "staging needs a fixed tag or digest")),
    Case("policy-network-default-deny-removed", "staging", "policy", "network-policies", "-", "",
         ("no default-deny NetworkPolicy",)),
    Case("policy-image-entries", "prod", "policy", "image-entries", "-",
         "tests/fixtures/broken/policy-image-entries/kustomization.yaml:images[name=ghcr.io/llm-cost-ops/llm-cost-opps]",
         ("matches no image of the bundle", "ghcr.io/llm-cost-ops/llm-cost-ops:1.4.2")),
    Case("policy-no-placeholder-secrets", "staging", "policy", "no-placeholder-secrets",
         "Secret/llm-cost-ops-staging/smtp-credentials", "stringData.password",
         ("staging bundle ships a placeholder value",)),
    Case("policy-service-account-shared", "staging", "policy", "service-account-per-component",
         "StatefulSet/llm-cost-ops-staging/postgres", "spec.template.spec.serviceAccountName",
         ("service account 'llm-cost-ops' is shared by components api and database",)),
    Case("policy-least-privilege-rbac", "staging", "policy", "least-privilege-rbac",
         "Role/llm-cost-ops-staging/llm-cost-ops-monitoring", "rules[0].verbs", ("wildcard verbs",)),
    Case("policy-no-migration-init-container", "staging", "policy", "no-migration-init-container",
         "Deployment/llm-cost-ops-staging/llm-cost-ops", "spec.template.spec.initContainers[0].command",
         ("runs migrations in an init container",)),
    Case("policy-kustomize-warnings", "staging", "policy", "kustomize-warnings",
         "-", "tests/fixtures/broken/policy-kustomize-warnings/kustomization.yaml",
         ("kustomize warned:", "'bases' is deprecated")),
    Case("contract-namespace", "staging", "contract", "namespace",
         "PersistentVolumeClaim/llm-cost-ops-qa/postgres-backup", "metadata.namespace",
         ("expected 'llm-cost-ops-staging', rendered 'llm-cost-ops-qa'",)),
    Case("contract-api-replicas", "staging", "contract", "api",
         "Deployment/llm-cost-ops-staging/llm-cost-ops", "spec.replicas",
         ("expected 2 (environments.yaml), rendered 3",)),
    Case("contract-api-resources", "prod", "contract", "api",
         "Deployment/llm-cost-ops-prod/llm-cost-ops",
         "spec.template.spec.containers[0].resources.limits.memory",
         ("expected '4Gi' (environments.yaml), rendered '2Gi'",)),
    Case("contract-autoscaling", "staging", "contract", "autoscaling",
         "HorizontalPodAutoscaler/llm-cost-ops-staging/llm-cost-ops", "spec.maxReplicas",
         ("expected 10 (environments.yaml), rendered 20",)),
    Case("contract-autoscaling-targets", "prod", "contract", "autoscaling",
         "HorizontalPodAutoscaler/llm-cost-ops-prod/llm-cost-ops", "spec.metrics",
         ("'cpu': 60",)),
    Case("contract-disruption-budget", "prod", "contract", "disruption-budget",
         "PodDisruptionBudget/llm-cost-ops-prod/llm-cost-ops", "spec.minAvailable",
         ("expected 3 (environments.yaml), rendered 2",)),
    Case("contract-database-storage", "staging", "contract", "database",
         "StatefulSet/llm-cost-ops-staging/postgres",
         "spec.volumeClaimTemplates[0].spec.resources.requests.storage",
         ("expected '30Gi' (environments.yaml), rendered '50Gi'",)),
    Case("contract-database-memory", "prod", "contract", "database",
         "StatefulSet/llm-cost-ops-prod/postgres",
         "spec.template.spec.containers[0].resources.requests.memory",
         ("expected '2Gi' (environments.yaml), rendered '1Gi'",)),
    Case("contract-monitoring", "staging", "contract", "monitoring", "-", "",
         ("monitoring is on for staging but found no Deployment playing the grafana role",)),
    Case("contract-monitoring-dev", "dev", "contract", "monitoring",
         "Deployment/llm-cost-ops-dev/prometheus", "",
         ("monitoring is off for dev but Deployment prometheus is present",)),
    Case("contract-config", "staging", "contract", "config",
         "ConfigMap/llm-cost-ops-staging/llm-cost-ops-config", "data.LOG_LEVEL",
         ("expected 'info' (environments.yaml), rendered 'debug'",)),
    Case("contract-disruption-budget-missing", "prod", "contract", "disruption-budget", "-", "",
         ("found no PodDisruptionBudget playing the disruption-budget role", "selector matches the API pods")),
    Case("contract-secret", "dev", "contract", "secret", "-", "",
         ("Secret llm-cost-ops-secrets (the API's envFrom secretRef) is not shipped in the bundle",
          "placeholder_secret is true for dev")),
]  # fmt: skip

R = "references"
REFERENCE_CASES = [
    Case("references-service-selector", "staging", R, "service-selector",
         "Service/llm-cost-ops-staging/grafana", "spec.selector", ("selects no pod", "grafana-ui")),
    Case("references-service-port", "staging", R, "service-port",
         "Service/llm-cost-ops-staging/llm-cost-ops", "spec.ports[0].targetPort",
         ("targetPort 'web' is no container port",)),
    Case("references-ingress-backend", "staging", R, "ingress-backend",
         "Ingress/llm-cost-ops-staging/llm-cost-ops",
         "spec.rules[0].http.paths[0].backend.service.port.number",
         ("Service/llm-cost-ops-staging/llm-cost-ops has no port 80",)),
    Case("references-autoscaler-target", "staging", R, "autoscaler-target",
         "HorizontalPodAutoscaler/llm-cost-ops-staging/llm-cost-ops", "spec.scaleTargetRef.name",
         ("scales Deployment llm-cost-ops-api, which is not in the bundle",)),
    Case("references-disruption-budget-selector", "staging", R, "disruption-budget-selector",
         "PodDisruptionBudget/llm-cost-ops-staging/llm-cost-ops", "spec.selector", ("selects no pod",)),
    Case("references-disruption-budget-eviction", "staging", R, "disruption-budget-eviction",
         "PodDisruptionBudget/llm-cost-ops-staging/llm-cost-ops", "spec.maxUnavailable",
         ("never allows an eviction",)),
    Case("references-service-account", "staging", R, "service-account",
         "Deployment/llm-cost-ops-staging/prometheus", "spec.template.spec.serviceAccountName",
         ("ServiceAccount prometheus, which is not in the bundle",)),
    Case("references-rbac-subject", "staging", R, "rbac-subject",
         "RoleBinding/llm-cost-ops-staging/llm-cost-ops-monitoring", "subjects[0].name",
         ("binds ServiceAccount llm-cost-ops-staging/prometheus",)),
    Case("references-rbac-role-ref", "staging", R, "rbac-role-ref",
         "RoleBinding/llm-cost-ops-staging/llm-cost-ops-monitoring", "roleRef.name",
         ("Role monitoring-reader is not in the bundle",)),
    Case("references-config-reference", "staging", R, "config-reference",
         "Deployment/llm-cost-ops-staging/prometheus", "spec.template.spec.volumes[0].configMap.items[0].key",
         ("ConfigMap/llm-cost-ops-staging/prometheus-config has no key 'prometheus.yaml'",)),
    Case("references-connection-host", "staging", R, "connection-host",
         "ConfigMap/llm-cost-ops-staging/grafana-datasources", "data.prometheus.yaml",
         ("host prometheus-server names no Service",)),
    Case("references-scrape-target", "staging", R, "scrape-target",
         "ConfigMap/llm-cost-ops-staging/prometheus-config",
         "data.prometheus.yml:scrape_configs[2].kubernetes_sd_configs[0].selectors[0].label",
         ("selector app=postgres matches no pod",)),
    Case("references-service-monitor", "staging", R, "service-monitor",
         "ServiceMonitor/llm-cost-ops-staging/llm-cost-ops", "spec.endpoints[0].port",
         ("no selected Service has a port named 'http-metrics'",)),
    Case("references-network-peer", "staging", R, "network-peer",
         "NetworkPolicy/llm-cost-ops-staging/grafana", "spec.ingress[0].from[0].namespaceSelector",
         ("selects no namespace", "kubernetes.io/metadata.name")),
    Case("references-network-dns-blocked", "staging", R, "network-flows",
         "Deployment/llm-cost-ops-staging/llm-cost-ops", "spec.template.metadata.labels",
         ("cannot reach cluster DNS (UDP 53)",)),
    Case("references-network-database-opened", "staging", R, "network-flows",
         "StatefulSet/llm-cost-ops-staging/postgres", "spec.template.metadata.labels",
         ("Deployment/llm-cost-ops-staging/grafana can reach", "only the API and migrations may")),
    Case("references-dropped-values", "staging", R, "dropped-values",
         "ConfigMap/llm-cost-ops-staging/llm-cost-ops-config", "data.SERVER_PORT",
         ("manifests/base/configmap.yaml sets SERVER_PORT",)),
]  # fmt: skip
CASES += REFERENCE_CASES

SCHEMA_RULES = {"openapi", "api-not-served"}
REFERENCE_RULES = {
    "service-selector", "service-port", "ingress-backend", "autoscaler-target", "disruption-budget-selector",
    "disruption-budget-eviction", "service-account", "rbac-subject", "rbac-role-ref", "config-reference",
    "connection-host", "scrape-target", "service-monitor", "network-peer", "network-flows", "dropped-values",
}  # fmt: skip
CONTRACT_RULES = {
    "namespace", "api", "autoscaling", "disruption-budget", "database", "monitoring", "config", "secret",
}  # fmt: skip


@pytest.fixture(scope="module")
def rendered(render_fixture, env_specs):
    """Every case's bundle, rendered once for this module (kustomize runs in parallel)."""
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = {c.case: pool.submit(render_fixture, env_specs[c.env], BROKEN / c.case) for c in CASES}
        bundles = {name: future.result() for name, future in futures.items()}
    return lambda case: bundles[case.case]


@pytest.mark.parametrize("case", CASES, ids=[c.case for c in CASES])
def test_fixture_breaks_exactly_its_rule(case, rendered, env_specs, all_findings):
    failed = errors(all_findings(rendered(case), env_specs[case.env]))
    assert failed, f"{case.case} breaks nothing"
    assert {(f.check, f.rule) for f in failed} == {(case.check, case.rule)}, [str(f) for f in failed]


@pytest.mark.parametrize("case", CASES, ids=[c.case for c in CASES])
def test_finding_names_environment_object_field_and_rule(case, rendered, env_specs, all_findings):
    failed = errors(all_findings(rendered(case), env_specs[case.env]))
    matching = [f for f in failed if f.object_ref == case.object_ref and f.field == case.field]
    assert matching, [str(f) for f in failed]
    text = str(matching[0])
    assert text.startswith(f"[{case.env}] {case.object_ref}")
    assert f"{case.object_ref} {case.field}".strip() + ": " in text
    assert text.endswith(f"(rule {case.check}/{case.rule})")
    for expected in case.substrings:
        assert expected in text


def _rules_broken(bundle, spec) -> set[str]:
    return {f.rule for rule in policy.RULES for f in rule(bundle, spec)}


def test_every_policy_rule_is_broken_by_a_fixture(rendered, env_specs):
    # Run each function of policy.RULES on every fixture: none may go unexercised.
    fired = {
        rule.__name__
        for case in CASES
        for rule in policy.RULES
        if any(True for _ in rule(rendered(case), env_specs[case.env]))
    }
    assert fired == {rule.__name__ for rule in policy.RULES}
    policy_rules = {c.rule for c in CASES if c.check == policy.CHECK}
    broken = set().union(*(_rules_broken(rendered(c), env_specs[c.env]) for c in CASES))
    assert policy_rules == broken


def test_every_schema_rule_contract_clause_and_reference_rule_has_a_fixture():
    assert {c.rule for c in CASES if c.check == schema.CHECK} == SCHEMA_RULES
    assert {c.rule for c in CASES if c.check == references.CHECK} == REFERENCE_RULES
    assert {c.rule for c in CASES if c.check == contract.CHECK} == CONTRACT_RULES


def test_every_fixture_directory_is_in_the_table():
    on_disk = {p.name for p in BROKEN.iterdir() if (p / "kustomization.yaml").is_file()}
    assert on_disk == {c.case for c in CASES}
