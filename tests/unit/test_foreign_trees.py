"""The checks on kustomize trees this project did not write (tests/fixtures/foreign/<tree>).

Three trees, each in another team's style, each kept twice: the corrected tree, and a defective
variant built on top of it (an overlay with patches, components and deprecated fields) whose
kustomization lists its seeded defects. Each is checked as staging, with the tree's namespace.

- `prefix-bases`: a base with short names, `namePrefix: payments-` per overlay, the defective
  variant using `bases` and (in a component) `commonLabels`, which rewrites NetworkPolicy peers;
- `flat`: one flat directory per environment, the team's own labels (`app: cost-api`), so every
  part is found by its image; the defective variant uses `patchesStrategicMerge`;
- `components`: the API alone plus database, monitoring and network Components, generators with
  hash suffixes; the defective variant adds a Component using `patchesJson6902` and a generator
  with `behavior: replace`.

Cases:
- every corrected tree passes schema, policy, contract and references (warnings only; the one for
  the Secret taken from outside lists its keys and the envFrom reads);
- every seeded defect is reported with the object as rendered (prefix, hash suffix), the field,
  the rule, and a message naming what is wrong;
- a defective tree breaks only the rules its defects seed (no unrelated error);
- every tree seeds every defect class: contract, each references rule, moving tags, images
  entries matching nothing, placeholder secrets and kustomize warnings (attributed to the file
  that uses the deprecated field: the overlay, or a component it includes).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import NamedTuple

import pytest

from llm_cost_ops_ops.bundles.findings import errors

pytestmark = pytest.mark.unit

FOREIGN = Path(__file__).resolve().parent.parent / "fixtures" / "foreign"
SHOWN = "tests/fixtures/foreign"


class Tree(NamedTuple):
    name: str
    namespace: str
    corrected: str
    defective: str


TREES = {
    "prefix-bases": Tree("prefix-bases", "payments-staging", "overlays/staging", "defective/staging"),
    "flat": Tree("flat", "costs-staging", "staging", "staging-defective"),
    "components": Tree("components", "llm-costs-staging", "envs/staging", "envs/staging-defective"),
}


class Defect(NamedTuple):
    tree: str
    check: str
    rule: str
    object_ref: str
    field: str
    substrings: tuple[str, ...]


P, C, R = "policy", "contract", "references"
PA, FL, CO = "payments-staging", "costs-staging", "llm-costs-staging"
PODS = "spec.template.spec"

DEFECTS = [
    # prefix-bases: every object as rendered carries the `payments-` prefix.
    Defect("prefix-bases", P, "kustomize-warnings", "-", f"{SHOWN}/prefix-bases/defective/staging/kustomization.yaml",
           ("'bases' is deprecated",)),
    Defect("prefix-bases", P, "kustomize-warnings", "-", f"{SHOWN}/prefix-bases/defective/team-labels/kustomization.yaml",
           ("'commonLabels' is deprecated",)),
    Defect("prefix-bases", P, "pinned-image-tag", f"Deployment/{PA}/payments-grafana", f"{PODS}.containers[0].image",
           ("'grafana/grafana:main'", "tag 'main' moves")),
    Defect("prefix-bases", P, "image-entries", "-",
           f"{SHOWN}/prefix-bases/defective/staging/kustomization.yaml:images[name=ghcr.io/llm-cost-ops/llm-cost-ops-api]",
           ("matches no image of the bundle",)),
    Defect("prefix-bases", P, "no-placeholder-secrets", f"Secret/{PA}/payments-smtp", "stringData.password",
           ("ships a placeholder value",)),
    Defect("prefix-bases", C, "api", f"Deployment/{PA}/payments-api", "spec.replicas",
           ("expected 2 (environments.yaml), rendered 3",)),
    Defect("prefix-bases", R, "service-selector", f"Service/{PA}/payments-grafana", "spec.selector",
           ("selects no pod", "grafana-ui")),
    Defect("prefix-bases", R, "service-port", f"Service/{PA}/payments-api", "spec.ports[1].targetPort",
           ("targetPort 'prom' is no container port",)),
    Defect("prefix-bases", R, "ingress-backend", f"Ingress/{PA}/payments-api",
           "spec.rules[0].http.paths[0].backend.service.name", ("no Service api-svc in the bundle",)),
    Defect("prefix-bases", R, "autoscaler-target", f"HorizontalPodAutoscaler/{PA}/payments-api",
           "spec.scaleTargetRef.name", ("scales Deployment api-server",)),
    Defect("prefix-bases", R, "disruption-budget-eviction", f"PodDisruptionBudget/{PA}/payments-api",
           "spec.maxUnavailable", ("never allows an eviction",)),
    Defect("prefix-bases", R, "disruption-budget-selector", f"PodDisruptionBudget/{PA}/payments-db", "spec.selector",
           ("selects no pod",)),
    Defect("prefix-bases", R, "service-account", f"Deployment/{PA}/payments-prometheus", f"{PODS}.serviceAccountName",
           ("ServiceAccount prometheus-sa, which is not in the bundle",)),
    Defect("prefix-bases", R, "rbac-subject", f"RoleBinding/{PA}/payments-prometheus-discovery", "subjects[0].name",
           (f"ServiceAccount {PA}/payments-prom",)),
    Defect("prefix-bases", R, "rbac-role-ref", f"RoleBinding/{PA}/payments-prometheus-discovery", "roleRef.name",
           ("Role pod-reader is not in the bundle",)),
    Defect("prefix-bases", R, "config-reference", f"Deployment/{PA}/payments-grafana",
           f"{PODS}.containers[0].env[1].valueFrom.secretKeyRef", (f"Secret/{PA}/payments-smtp has no key 'smtp-password'",)),
    Defect("prefix-bases", R, "connection-host", f"ConfigMap/{PA}/payments-api-config", "data.DATABASE_HOST",
           ("host db names no Service",)),
    Defect("prefix-bases", R, "scrape-target", f"ConfigMap/{PA}/payments-prometheus-config",
           "data.prometheus.yml:scrape_configs[0].kubernetes_sd_configs[0].selectors[0].label",
           ("selector app=payments-api matches no pod",)),
    Defect("prefix-bases", R, "network-peer", f"NetworkPolicy/{PA}/payments-dns", "spec.egress[0].to[0].podSelector",
           ("requires team=payments", "selects no pod in kube-system")),
    Defect("prefix-bases", R, "network-peer", f"NetworkPolicy/{PA}/payments-migrations", "spec.podSelector",
           ("applies to no pod",)),
    Defect("prefix-bases", R, "network-flows", f"Deployment/{PA}/payments-api", "spec.template.metadata.labels",
           ("cannot reach cluster DNS",)),
    Defect("prefix-bases", R, "network-flows", f"StatefulSet/{PA}/payments-db", "spec.template.metadata.labels",
           ("migration Job pods cannot reach", "postgresql port 5432")),
    Defect("prefix-bases", R, "dropped-values", f"ConfigMap/{PA}/payments-api-config", "data.SERVER_PORT",
           (f"{SHOWN}/prefix-bases/base/api.yaml sets SERVER_PORT",)),
    # flat: the team's own names and labels, parts found by image.
    Defect("flat", P, "kustomize-warnings", "-", f"{SHOWN}/flat/staging-defective/kustomization.yaml",
           ("'patchesStrategicMerge' is deprecated",)),
    Defect("flat", P, "pinned-image-tag", f"Deployment/{FL}/cost-prometheus", f"{PODS}.containers[0].image",
           ("'prom/prometheus:latest'",)),
    Defect("flat", P, "image-entries", "-",
           f"{SHOWN}/flat/staging-defective/kustomization.yaml:images[name=docker.io/library/postgres]",
           ("matches no image of the bundle", "postgres:16.6-alpine")),
    Defect("flat", P, "no-placeholder-secrets", f"Secret/{FL}/cost-smtp", "stringData.password",
           ("ships a placeholder value",)),
    Defect("flat", C, "database", f"StatefulSet/{FL}/cost-db",
           "spec.volumeClaimTemplates[0].spec.resources.requests.storage", ("expected '30Gi' (environments.yaml), rendered '50Gi'",)),
    Defect("flat", R, "service-selector", f"Service/{FL}/cost-db", "spec.selector", ("selects no pod (app=costdb)",)),
    Defect("flat", R, "service-port", f"Service/{FL}/cost-api", "spec.ports[0].targetPort",
           ("targetPort 8000 is no container port",)),
    Defect("flat", R, "ingress-backend", f"Ingress/{FL}/cost-api",
           "spec.rules[0].http.paths[0].backend.service.port.number", (f"Service/{FL}/cost-api has no port 80",)),
    Defect("flat", R, "autoscaler-target", f"HorizontalPodAutoscaler/{FL}/cost-api", "spec.scaleTargetRef.name",
           ("scales StatefulSet cost-api",)),
    Defect("flat", R, "disruption-budget-eviction", f"PodDisruptionBudget/{FL}/cost-api", "spec.minAvailable",
           ("minAvailable 2 with at least 2 replicas never allows an eviction",)),
    Defect("flat", R, "disruption-budget-selector", f"PodDisruptionBudget/{FL}/cost-db", "spec.selector",
           ("selects no pod",)),
    Defect("flat", R, "service-account", f"Deployment/{FL}/cost-grafana", f"{PODS}.serviceAccountName",
           ("ServiceAccount grafana, which is not in the bundle",)),
    Defect("flat", R, "rbac-subject", f"RoleBinding/{FL}/cost-prometheus", "subjects[0].name",
           (f"ServiceAccount {FL}/prometheus",)),
    Defect("flat", R, "rbac-role-ref", f"RoleBinding/{FL}/cost-prometheus", "roleRef.name",
           ("ClusterRole monitoring-reader is not in the bundle",)),
    Defect("flat", R, "config-reference", f"Deployment/{FL}/cost-prometheus", f"{PODS}.volumes[0].configMap.items[0].key",
           (f"ConfigMap/{FL}/cost-prometheus has no key 'prometheus.yaml'",)),
    Defect("flat", R, "config-reference", f"Deployment/{FL}/cost-grafana", f"{PODS}.containers[0].env[0].valueFrom.secretKeyRef",
           (f"Secret/{FL}/cost-smtp has no key 'smtp-password'",)),
    Defect("flat", R, "connection-host", f"ConfigMap/{FL}/cost-grafana-datasources", "data.datasources.yaml",
           ("host cost-prom names no Service",)),
    Defect("flat", R, "service-monitor", f"ServiceMonitor/{FL}/cost-api", "spec.selector", ("selects no Service",)),
    Defect("flat", R, "network-peer", f"NetworkPolicy/{FL}/cost-api", "spec.ingress[0].from[0].namespaceSelector",
           ("selects no namespace", "kubernetes.io/metadata.name")),
    Defect("flat", R, "network-flows", f"Deployment/{FL}/cost-api", "spec.template.metadata.labels",
           ("ingress controller cannot reach", "http port 8080")),
    Defect("flat", R, "dropped-values", f"ConfigMap/{FL}/cost-api-config", "data.HEALTH_ENDPOINT",
           (f"{SHOWN}/flat/staging/api.yaml sets HEALTH_ENDPOINT",)),
    # components: generated ConfigMap names carry kustomize's content hash.
    Defect("components", P, "kustomize-warnings", "-", f"{SHOWN}/components/components/legacy-patches/kustomization.yaml",
           ("'patchesJson6902' is deprecated",)),
    Defect("components", P, "pinned-image-tag", f"Deployment/{CO}/llm-cost-ops", f"{PODS}.containers[0].image",
           ("tag 'staging' is an environment's name",)),
    Defect("components", P, "image-entries", "-",
           f"{SHOWN}/components/envs/staging-defective/kustomization.yaml:images[name=llm-cost-ops]",
           ("matches no image of the bundle",)),
    Defect("components", P, "no-placeholder-secrets", f"Secret/{CO}/grafana-admin", "stringData.admin-password",
           ("ships a placeholder value",)),
    Defect("components", C, "config", f"ConfigMap/{CO}/llm-cost-ops-config-8k7mkktbfg", "data.LOG_LEVEL",
           ("expected 'info' (environments.yaml), rendered 'debug'",)),
    Defect("components", R, "service-selector", f"Service/{CO}/prometheus", "spec.selector", ("selects no pod (app=prometheus)",)),
    Defect("components", R, "service-port", f"Service/{CO}/postgres", "spec.ports[0].targetPort",
           ("targetPort 'pg' is no container port", f"StatefulSet/{CO}/postgres")),
    Defect("components", R, "ingress-backend", f"Ingress/{CO}/llm-cost-ops",
           "spec.rules[0].http.paths[0].backend.service.port.name", ("has no port named 'https'",)),
    Defect("components", R, "autoscaler-target", f"HorizontalPodAutoscaler/{CO}/llm-cost-ops", "spec.scaleTargetRef.name",
           ("scales Deployment llm-cost-ops-api",)),
    Defect("components", R, "disruption-budget-eviction", f"PodDisruptionBudget/{CO}/postgres", "spec.minAvailable",
           ("minAvailable 1", "never allows an eviction")),
    Defect("components", R, "disruption-budget-selector", f"PodDisruptionBudget/{CO}/llm-cost-ops", "spec.selector",
           ("selects no pod",)),
    Defect("components", R, "service-account", f"StatefulSet/{CO}/postgres", f"{PODS}.serviceAccountName",
           ("ServiceAccount postgres-sa, which is not in the bundle",)),
    Defect("components", R, "rbac-subject", f"RoleBinding/{CO}/prometheus", "subjects[0].name",
           (f"ServiceAccount {CO}/prometheus-server",)),
    Defect("components", R, "rbac-role-ref", f"RoleBinding/{CO}/prometheus", "roleRef.name",
           ("Role prometheus-reader is not in the bundle",)),
    Defect("components", R, "config-reference", f"Deployment/{CO}/llm-cost-ops",
           f"{PODS}.volumes[0].projected.sources[0].configMap.name", ("ConfigMap llm-cost-ops-ca is not in the bundle",)),
    Defect("components", R, "config-reference", f"Deployment/{CO}/grafana", f"{PODS}.containers[0].env[0].valueFrom.secretKeyRef",
           (f"Secret/{CO}/grafana-admin has no key 'admin-user'",)),
    Defect("components", R, "connection-host", f"ConfigMap/{CO}/llm-cost-ops-config-8k7mkktbfg", "data.DATABASE_URL",
           (f"Service/{CO}/postgres has no port 5433",)),
    Defect("components", R, "scrape-target", f"ConfigMap/{CO}/prometheus",
           "data.prometheus.yml:scrape_configs[0].kubernetes_sd_configs[0].namespaces",
           ("namespace llm-costs-monitoring is not the bundle's",)),
    Defect("components", R, "network-peer", f"NetworkPolicy/{CO}/llm-cost-ops", "spec.ingress[1].from[0].podSelector",
           (f"selects no pod in {CO}",)),
    Defect("components", R, "network-flows", f"Deployment/{CO}/llm-cost-ops", "spec.template.metadata.labels",
           (f"Deployment/{CO}/prometheus cannot reach", "metrics port 9090")),
    Defect("components", R, "dropped-values", f"ConfigMap/{CO}/llm-cost-ops-config-8k7mkktbfg", "data.SERVER_PORT",
           (f"{SHOWN}/components/app/kustomization.yaml sets SERVER_PORT", "behavior: replace")),
]  # fmt: skip

# One rule at least per class the issue lists; scrape selectors are either a Prometheus scrape
# config or a ServiceMonitor, so that class is checked apart.
CLASSES = {
    P: {"kustomize-warnings", "pinned-image-tag", "image-entries", "no-placeholder-secrets"},
    R: {
        "service-selector", "service-port", "ingress-backend", "autoscaler-target", "disruption-budget-selector",
        "disruption-budget-eviction", "service-account", "rbac-subject", "rbac-role-ref", "config-reference",
        "connection-host", "network-peer", "network-flows", "dropped-values",
    },
}  # fmt: skip
SCRAPE_RULES = {"scrape-target", "service-monitor"}


def _spec(env_specs, tree: Tree, variant: str):
    return env_specs["staging"].model_copy(
        update={"namespace": tree.namespace, "overlay": f"{SHOWN}/{tree.name}/{variant}"}
    )


@pytest.fixture(scope="module")
def checked(render_fixture, env_specs, all_findings):
    """Every tree, corrected and defective, rendered and checked once for this module."""

    def run(tree: Tree, variant: str):
        spec = _spec(env_specs, tree, variant)
        return all_findings(render_fixture(spec, FOREIGN / tree.name / variant), spec)

    jobs = {
        (t.name, kind): (t, getattr(t, kind)) for t in TREES.values() for kind in ("corrected", "defective")
    }
    with ThreadPoolExecutor(max_workers=3) as pool:
        futures = {key: pool.submit(run, *args) for key, args in jobs.items()}
        return {key: future.result() for key, future in futures.items()}


@pytest.mark.parametrize("tree", TREES)
def test_corrected_tree_passes_every_check(tree, checked):
    findings = checked[(tree, "corrected")]
    assert errors(findings) == [], [str(f) for f in errors(findings)]
    # What remains are warnings for the operator: the Secret to provide, a CRD to install.
    assert {f.rule for f in findings} <= {"external-secret", "crd-required"}
    # The API's Secret comes from outside staging: the warning lists the keys read by name and
    # says the API reads the rest through envFrom.
    [secret] = [f for f in findings if f.rule == "external-secret"]
    assert "provide it with the keys " in secret.message
    assert (
        "and every variable the pods read from it through envFrom (DATABASE_URL, JWT_SECRET" in secret.message
    )


@pytest.mark.parametrize(
    "defect", DEFECTS, ids=[f"{d.tree}:{d.rule}:{d.object_ref}:{d.field}" for d in DEFECTS]
)
def test_seeded_defect_is_found_with_object_field_and_rule(defect, checked):
    failed = errors(checked[(defect.tree, "defective")])
    matching = [
        f for f in failed
        if (f.check, f.rule, f.object_ref, f.field) == (defect.check, defect.rule, defect.object_ref, defect.field)
    ]  # fmt: skip
    assert matching, [str(f) for f in failed if f.rule == defect.rule]
    text = str(matching[0])
    assert text.startswith(f"[staging] {defect.object_ref}")
    assert text.endswith(f"(rule {defect.check}/{defect.rule})")
    for expected in defect.substrings:
        assert any(expected in str(f) for f in matching), (expected, [str(f) for f in matching])


@pytest.mark.parametrize("tree", TREES)
def test_defective_tree_breaks_only_its_seeded_rules(tree, checked):
    broken = {(f.check, f.rule) for f in errors(checked[(tree, "defective")])}
    assert broken == {(d.check, d.rule) for d in DEFECTS if d.tree == tree}


@pytest.mark.parametrize("tree", TREES)
def test_every_tree_seeds_every_defect_class(tree):
    seeded = {(d.check, d.rule) for d in DEFECTS if d.tree == tree}
    for check, rules in CLASSES.items():
        assert {(check, rule) for rule in rules} <= seeded
    assert any(check == C for check, _ in seeded)
    assert any((R, rule) in seeded for rule in SCRAPE_RULES)
