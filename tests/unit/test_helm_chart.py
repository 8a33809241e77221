"""The Helm chart (charts/llm-cost-ops) and its renderer (llm_cost_ops_ops.bundles.helm, renderers).

Cases:
- each environment rendered both ways gives the same objects once only Helm's own labels are
  normalised; an edit to one tree only (a value, a label, an object) fails with a diff line naming
  the object and the field;
- every Helm bundle passes schema (with Helm's lint), policy, contract and references checks;
- the Helm bundle carries no hook, names each object's template as its source, renders into the
  environment's namespace only, and its digest is stable;
- `renderer:` picks the implementation (kustomize by default) and is checked strictly at load;
- the `helm test` pod calls the API's health endpoint through its Service, is a test hook, meets
  the restricted posture and the schema, and its NetworkPolicies open exactly that path;
- Chart.yaml has a kubeVersion; lint holds it to the environment's target version;
- chart errors are one RenderError line naming the chart file, template and line and the value:
  a failing template, a missing required value, a values file not matching values.schema.json
  (with its file and line), a template that does not parse, a wrong namespace, a missing chart or
  values file.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import helm_python
import pytest
import yaml

from llm_cost_ops_ops.bundles.equivalence import bundle_differences
from llm_cost_ops_ops.bundles.helm import HOOK_ANNOTATION, render_chart
from llm_cost_ops_ops.bundles.helm_lint import check_chart_lint, kube_version_admits
from llm_cost_ops_ops.bundles.model import ManifestObject, RenderedBundle
from llm_cost_ops_ops.bundles.policy import check_policy
from llm_cost_ops_ops.bundles.renderers import HelmRenderer, KustomizeRenderer, renderer_for
from llm_cost_ops_ops.bundles.schema import check_schema
from llm_cost_ops_ops.environments import EnvironmentSpec, load_environments
from llm_cost_ops_ops.errors import ConfigError, RenderError

pytestmark = pytest.mark.unit

ENVIRONMENTS = ("dev", "staging", "prod")
NAMES = ("kustomize", "helm")


def _helm(spec: EnvironmentSpec) -> EnvironmentSpec:
    return spec.model_copy(update={"renderer": "helm"})


@pytest.fixture(scope="module")
def helm_bundles(project_root: Path, env_specs: dict[str, EnvironmentSpec]) -> dict[str, RenderedBundle]:
    return {env: HelmRenderer().render(_helm(env_specs[env]), project_root) for env in ENVIRONMENTS}


@pytest.fixture
def chart_copy(tmp_path: Path, project_root: Path) -> Path:
    root = tmp_path / "root"
    shutil.copytree(project_root / "charts", root / "charts")
    return root


def _render_error(root: Path, env: str = "prod", namespace: str | None = None) -> str:
    chart = root / "charts" / "llm-cost-ops"
    with pytest.raises(RenderError) as caught:
        render_chart(
            env, chart, chart / f"values-{env}.yaml", namespace=namespace or f"llm-cost-ops-{env}", root=root
        )
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"{env}: ")
    return message


# --- the two trees stay equal ------------------------------------------------------------------


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_both_renderers_give_the_same_objects(render_overlays, helm_bundles, env):
    differences = bundle_differences(render_overlays[env], helm_bundles[env], NAMES)
    assert differences == [], "\n".join(differences)
    assert len(helm_bundles[env].objects) == len(render_overlays[env].objects)


def test_only_helms_own_labels_are_normalised(helm_bundles):
    deployment = helm_bundles["prod"].find("Deployment", "llm-cost-ops")
    assert deployment.labels["helm.sh/chart"] == "llm-cost-ops-0.1.0"
    assert deployment.labels["app.kubernetes.io/managed-by"] == "llm-cost-ops-ops"
    template_labels = deployment.body["spec"]["template"]["metadata"]["labels"]
    assert "helm.sh/chart" not in template_labels  # a chart bump must not roll the pods


def _changed(bundle: RenderedBundle, kind: str, name: str, change) -> RenderedBundle:
    objects = []
    for obj in bundle.objects:
        body = yaml.safe_load(yaml.safe_dump(obj.body))
        if obj.kind == kind and obj.name == name:
            change(body)
        objects.append(ManifestObject(body, obj.source))
    return RenderedBundle.from_objects(bundle.environment, objects)


def test_a_value_changed_in_one_tree_names_object_and_field(render_overlays, helm_bundles):
    def more_replicas(body):
        body["spec"]["replicas"] = 7

    edited = _changed(helm_bundles["prod"], "Deployment", "llm-cost-ops", more_replicas)
    assert bundle_differences(render_overlays["prod"], edited, NAMES) == [
        "Deployment/llm-cost-ops-prod/llm-cost-ops spec.replicas: kustomize 5, helm 7"
    ]


def test_a_label_other_than_helms_is_a_difference(render_overlays, helm_bundles):
    def managed_by_helm(body):
        body["spec"]["template"]["metadata"]["labels"]["team"] = "x"
        body["metadata"]["labels"]["app.kubernetes.io/managed-by"] = "Helm"

    edited = _changed(helm_bundles["dev"], "StatefulSet", "postgres", managed_by_helm)
    differences = bundle_differences(render_overlays["dev"], edited, NAMES)
    # managed-by: Helm is Helm's own and normalised away; the inventory label it replaced is missed.
    assert differences == [
        "StatefulSet/llm-cost-ops-dev/postgres metadata.labels.app.kubernetes.io/managed-by: "
        "kustomize 'llm-cost-ops-ops', helm '<absent>'",
        "StatefulSet/llm-cost-ops-dev/postgres spec.template.metadata.labels.team: kustomize '<absent>', helm 'x'",
    ]


def test_an_object_in_one_tree_only_is_named(render_overlays, helm_bundles):
    bundle = helm_bundles["staging"]
    fewer = RenderedBundle.from_objects("staging", [o for o in bundle.objects if o.kind != "ServiceMonitor"])
    assert bundle_differences(render_overlays["staging"], fewer, NAMES) == [
        "ServiceMonitor/llm-cost-ops-staging/llm-cost-ops: only in the kustomize render "
        "(manifests/base/servicemonitor.yaml)"
    ]


# --- the Helm bundle --------------------------------------------------------------------------


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_helm_bundles_pass_every_check(helm_bundles, env_specs, all_findings, project_root, env):
    spec = _helm(env_specs[env])
    findings = all_findings(helm_bundles[env], spec) + check_chart_lint(spec, project_root)
    assert [str(f) for f in findings if f.severity == "error"] == []


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_helm_bundle_shape(helm_bundles, env_specs, env):
    bundle = helm_bundles[env]
    assert bundle.namespaces() == [env_specs[env].namespace]
    assert bundle.find("Namespace", env_specs[env].namespace) is not None
    assert all(HOOK_ANNOTATION not in (o.body["metadata"].get("annotations") or {}) for o in bundle.objects)
    assert all(o.source.startswith("charts/llm-cost-ops/templates/") for o in bundle.objects)
    assert bundle.find("StatefulSet", "postgres").source == (
        "charts/llm-cost-ops/templates/database/statefulset.yaml (Helm template)"
    )


def test_helm_digest_is_stable(helm_bundles, env_specs, project_root):
    again = HelmRenderer().render(_helm(env_specs["prod"]), project_root)
    assert again.digest == helm_bundles["prod"].digest


def test_renderer_is_picked_per_environment(env_specs):
    assert isinstance(renderer_for(env_specs["dev"]), KustomizeRenderer)  # the default
    assert isinstance(renderer_for(_helm(env_specs["dev"])), HelmRenderer)
    assert check_chart_lint(env_specs["dev"], Path(".")) == []  # kustomize: no chart to lint


def test_renderer_is_checked_at_load(tmp_path, project_root):
    text = (project_root / "environments.yaml").read_text()
    good = tmp_path / "good.yaml"
    good.write_text(text.replace("  staging:\n", "  staging:\n    renderer: helm\n", 1))
    specs = load_environments(good)
    assert specs["staging"].renderer == "helm" and specs["prod"].renderer == "kustomize"
    assert (
        specs["staging"].chart_values_path(tmp_path) == tmp_path / "charts/llm-cost-ops/values-staging.yaml"
    )
    bad = tmp_path / "bad.yaml"
    bad.write_text(text.replace("  staging:\n", "  staging:\n    renderer: jsonnet\n", 1))
    with pytest.raises(ConfigError, match=r"bad.yaml:\d+: environments.staging.renderer: Input should be"):
        load_environments(bad)


# --- helm test, Chart.yaml ----------------------------------------------------------------------


def _hooks(project_root: Path, env: str) -> list[dict]:
    chart = project_root / "charts" / "llm-cost-ops"
    values = yaml.safe_load((chart / f"values-{env}.yaml").read_text())
    with helm_python.Chart.load(chart) as loaded:
        rendered = loaded.render(values=values, name="llm-cost-ops", namespace=f"llm-cost-ops-{env}")
    documents = [
        d for name, text in rendered.items() if "/tests/" in name for d in yaml.safe_load_all(text) if d
    ]
    return documents


def test_helm_test_pod_calls_the_api_health_endpoint(project_root, env_specs, render_overlays):
    hooks = _hooks(project_root, "prod")
    pods = [d for d in hooks if d["kind"] == "Pod"]
    assert len(pods) == 1
    pod = pods[0]
    assert pod["metadata"]["annotations"][HOOK_ANNOTATION] == "test"
    command = pod["spec"]["containers"][0]["command"]
    assert command[0] == "curl" and "--fail" in command
    assert command[-1] == "http://llm-cost-ops.llm-cost-ops-prod.svc:8080/health"
    service = render_overlays["prod"].find("Service", "llm-cost-ops")
    assert {"name": "http", "port": 8080, "targetPort": "http", "protocol": "TCP"} in service.body["spec"][
        "ports"
    ]
    # The same posture and schema as every pod of the bundle.
    bundle = RenderedBundle.from_objects("prod", [ManifestObject(d) for d in hooks])
    assert [f for f in check_schema(bundle, "1.30") if f.severity == "error"] == []
    posture = {"runs-as-non-root", "read-only-root", "capabilities", "seccomp", "resources"}
    assert [str(f) for f in check_policy(bundle, env_specs["prod"]) if f.rule in posture] == []


def test_helm_test_network_path_is_only_to_the_api_http_port(project_root):
    policies = [d for d in _hooks(project_root, "staging") if d["kind"] == "NetworkPolicy"]
    assert sorted(p["spec"]["policyTypes"][0] for p in policies) == ["Egress", "Ingress"]
    ports = [r["ports"] for p in policies for r in p["spec"].get("egress", []) + p["spec"].get("ingress", [])]
    assert ports == [[{"protocol": "TCP", "port": 8080}], [{"protocol": "TCP", "port": 8080}]]


def test_chart_declares_kube_version_and_lint_holds_it(project_root, env_specs, chart_copy):
    chart_yaml = yaml.safe_load((project_root / "charts/llm-cost-ops/Chart.yaml").read_text())
    assert chart_yaml["kubeVersion"]
    (chart_copy / "charts/llm-cost-ops/Chart.yaml").write_text(
        (project_root / "charts/llm-cost-ops/Chart.yaml").read_text().replace(">=1.25.0-0", ">=1.31.0-0")
    )
    findings = check_chart_lint(_helm(env_specs["prod"]), chart_copy)
    assert [str(f) for f in findings] == [
        "[prod] - charts/llm-cost-ops/Chart.yaml:kubeVersion: kubeVersion '>=1.31.0-0' does not admit "
        "the environment's target Kubernetes 1.30 (kubernetes_version in environments.yaml) "
        "(rule schema/chart-kube-version)"
    ]


@pytest.mark.parametrize(
    ("constraint", "admitted"),
    [
        (">=1.25.0-0", True),
        (">= 1.25, < 1.30", False),
        ("<1.29 || >=1.30.0", True),
        ("1.30", True),
        ("~1.30", None),
    ],
)
def test_kube_version_constraints(constraint, admitted):
    if admitted is None:
        with pytest.raises(ValueError, match="cannot read"):
            kube_version_admits(constraint, "1.30")
    else:
        assert kube_version_admits(constraint, "1.30") is admitted


# --- chart errors: one line ---------------------------------------------------------------------


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def test_failing_template_names_file_line_and_value(chart_copy):
    _edit(
        chart_copy / "charts/llm-cost-ops/templates/hpa.yaml",
        "{{ $scaling.minReplicas }}",
        "{{ .Values.api.nothere.deeper }}",
    )
    message = _render_error(chart_copy)
    assert "charts/llm-cost-ops/templates/hpa.yaml:18: " in message
    assert "(value .Values.api.nothere.deeper)" in message


def test_missing_required_value_names_template_and_value(chart_copy):
    _edit(chart_copy / "charts/llm-cost-ops/values-prod.yaml", "environment: prod\n", "")
    _edit(
        chart_copy / "charts/llm-cost-ops/values.schema.json",
        '"environment": {"type": "string", "minLength": 1, "pattern": "^[A-Za-z0-9_]+$"}',
        '"environment": {"type": "string"}',
    )
    message = _render_error(chart_copy)
    assert "charts/llm-cost-ops/templates/" in message
    assert "environment is required (values-<env>.yaml)" in message


def test_values_not_matching_the_schema_name_file_line_and_value(chart_copy):
    _edit(chart_copy / "charts/llm-cost-ops/values-prod.yaml", "  replicas: 5\n", '  replicas: "5"\n')
    message = _render_error(chart_copy)
    assert message == (
        "prod: helm chart charts/llm-cost-ops: charts/llm-cost-ops/values-prod.yaml:12: api.replicas: "
        "got string, want integer (given: '5'), against charts/llm-cost-ops/values.schema.json"
    )


def test_unknown_value_is_a_schema_error(chart_copy):
    _edit(
        chart_copy / "charts/llm-cost-ops/values-prod.yaml",
        "monitoring:\n",
        "monitorng: {enabled: true}\nmonitoring:\n",
    )
    message = _render_error(chart_copy)
    assert "additional properties 'monitorng' not allowed" in message
    assert "values.schema.json" in message


def test_template_that_does_not_parse(chart_copy):
    _edit(chart_copy / "charts/llm-cost-ops/templates/pdb.yaml", "{{- else }}", "{{- else if }}")
    message = _render_error(chart_copy)
    assert message.startswith("prod: helm chart charts/llm-cost-ops: charts/llm-cost-ops/templates/pdb.yaml:")


def test_rendering_into_another_namespace_is_refused(chart_copy):
    message = _render_error(chart_copy, namespace="default")
    assert 'namespace "llm-cost-ops-prod" (values) differs from the release namespace "default"' in message


def test_missing_chart_and_values_file(chart_copy):
    shutil.rmtree(chart_copy / "charts/llm-cost-ops/templates/tests")
    (chart_copy / "charts/llm-cost-ops/values-prod.yaml").unlink()
    assert "values-prod.yaml: file not found" in _render_error(chart_copy)
    shutil.rmtree(chart_copy / "charts/llm-cost-ops")
    assert _render_error(chart_copy) == "prod: helm chart charts/llm-cost-ops not found (no Chart.yaml there)"
