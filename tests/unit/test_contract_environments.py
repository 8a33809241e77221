"""The real overlays against the deployment guide's environment contract, and environments.yaml.

The expected values below are literals copied from the deployment guide, not read from
environments.yaml, so an edit that changes both the overlay and environments.yaml still fails here.

Cases:
- namespace llm-cost-ops-<env> holds every namespaced object;
- API replicas 1/2/5 and container requests/limits per environment;
- database storage 10/30/100Gi and memory request/limit per environment;
- HPA 1-3/2-10/5-50 at 70% cpu and 80% memory;
- prod PodDisruptionBudget minAvailable 3;
- monitoring (prometheus and grafana Deployments) absent in dev, present in staging and prod;
- ConfigMap LOG_LEVEL debug/info/warn and DATABASE_POOL_SIZE 5/10/20;
- dev ships Secret llm-cost-ops-secrets with changeme placeholders, staging and prod no Secret;
- staging and prod images carry a fixed tag, never latest;
- no init container runs migrations;
- check_schema ("1.30"), check_policy and check_contract find no error in any environment;
- a namespaced object without metadata.namespace breaks the namespace clause;
- environments.yaml loader: the real file, and ConfigError with one line naming the file and the
  dotted field for an unknown field, a wrong type, a missing field, a missing file, invalid YAML
  and no environments;
- issue 17: an environment given twice, a key given twice in one mapping, and a bool, string or
  float where an integer is meant (or a number where a string is meant) are errors with file and line;
- issue 19: an environment name that is not a Dagster group name, and a kubernetes_version that is
  not a version or is outside the shipped schemas, are errors naming file and field at load time.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from llm_cost_ops_ops.bundles.contract import check_contract
from llm_cost_ops_ops.bundles.findings import errors
from llm_cost_ops_ops.bundles.images import image_tag
from llm_cost_ops_ops.bundles.model import ManifestObject, RenderedBundle
from llm_cost_ops_ops.bundles.policy import check_policy
from llm_cost_ops_ops.bundles.quantity import parse_quantity
from llm_cost_ops_ops.bundles.schema import check_schema
from llm_cost_ops_ops.environments import load_environments
from llm_cost_ops_ops.errors import ConfigError

pytestmark = pytest.mark.unit

ENVIRONMENTS = ("dev", "staging", "prod")

# From the deployment guide.
API_REPLICAS = {"dev": 1, "staging": 2, "prod": 5}
API_RESOURCES = {  # (requests memory, limits memory, requests cpu, limits cpu)
    "dev": ("256Mi", "1Gi", "250m", "1000m"),
    "staging": ("384Mi", "1.5Gi", "350m", "1500m"),
    "prod": ("1Gi", "4Gi", "1000m", "4000m"),
}
DB_STORAGE = {"dev": "10Gi", "staging": "30Gi", "prod": "100Gi"}
DB_MEMORY = {"dev": ("256Mi", "512Mi"), "staging": ("512Mi", "1Gi"), "prod": ("2Gi", "4Gi")}
HPA_RANGE = {"dev": (1, 3), "staging": (2, 10), "prod": (5, 50)}
MONITORING = {"dev": False, "staging": True, "prod": True}
LOG_LEVEL = {"dev": "debug", "staging": "info", "prod": "warn"}
POOL_SIZE = {"dev": "5", "staging": "10", "prod": "20"}


def _container(obj, name):
    containers = obj.body["spec"]["template"]["spec"]["containers"]
    return next(c for c in containers if c["name"] == name)


def _same(rendered, expected) -> bool:
    return parse_quantity(rendered) == parse_quantity(expected)


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_namespace(render_overlays, env):
    bundle = render_overlays[env]
    namespace = f"llm-cost-ops-{env}"
    assert bundle.find("Namespace", namespace) is not None
    cluster_scoped = {"Namespace"}
    for obj in bundle.objects:
        if obj.kind not in cluster_scoped:
            assert obj.namespace == namespace, obj.ref


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_api_replicas(render_overlays, env):
    deployment = render_overlays[env].find("Deployment", "llm-cost-ops")
    assert deployment.body["spec"]["replicas"] == API_REPLICAS[env]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_api_resources(render_overlays, env):
    resources = _container(render_overlays[env].find("Deployment", "llm-cost-ops"), "llm-cost-ops")[
        "resources"
    ]
    request_memory, limit_memory, request_cpu, limit_cpu = API_RESOURCES[env]
    assert _same(resources["requests"]["memory"], request_memory)
    assert _same(resources["limits"]["memory"], limit_memory)
    assert _same(resources["requests"]["cpu"], request_cpu)
    assert _same(resources["limits"]["cpu"], limit_cpu)


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_database_storage_and_memory(render_overlays, env):
    statefulset = render_overlays[env].find("StatefulSet", "postgres")
    claim = next(
        t for t in statefulset.body["spec"]["volumeClaimTemplates"] if t["metadata"]["name"] == "data"
    )
    assert _same(claim["spec"]["resources"]["requests"]["storage"], DB_STORAGE[env])
    resources = _container(statefulset, "postgres")["resources"]
    request, limit = DB_MEMORY[env]
    assert _same(resources["requests"]["memory"], request)
    assert _same(resources["limits"]["memory"], limit)


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_autoscaling(render_overlays, env):
    hpa = render_overlays[env].find("HorizontalPodAutoscaler", "llm-cost-ops")
    spec = hpa.body["spec"]
    assert (spec["minReplicas"], spec["maxReplicas"]) == HPA_RANGE[env]
    assert spec["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "llm-cost-ops"}
    targets = {m["resource"]["name"]: m["resource"]["target"] for m in spec["metrics"]}
    assert targets == {
        "cpu": {"type": "Utilization", "averageUtilization": 70},
        "memory": {"type": "Utilization", "averageUtilization": 80},
    }


def test_prod_disruption_budget_keeps_three_api_pods(render_overlays):
    pdb = render_overlays["prod"].find("PodDisruptionBudget", "llm-cost-ops")
    assert pdb.body["spec"]["minAvailable"] == 3
    assert "maxUnavailable" not in pdb.body["spec"]
    assert pdb.body["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"] == "llm-cost-ops"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_monitoring(render_overlays, env):
    bundle = render_overlays[env]
    for name in ("prometheus", "grafana"):
        assert (bundle.find("Deployment", name) is not None) is MONITORING[env], name


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_application_config(render_overlays, env):
    data = render_overlays[env].find("ConfigMap", "llm-cost-ops-config").body["data"]
    assert data["LOG_LEVEL"] == LOG_LEVEL[env]
    assert data["DATABASE_POOL_SIZE"] == POOL_SIZE[env]


def test_dev_ships_the_placeholder_secret(render_overlays):
    secret = render_overlays["dev"].find("Secret", "llm-cost-ops-secrets")
    assert secret is not None
    values = secret.body["stringData"]
    assert {"DATABASE_URL", "JWT_SECRET", "database-password"} <= values.keys()
    assert all("changeme" in value for value in values.values())


@pytest.mark.parametrize("env", ["staging", "prod"])
def test_staging_and_prod_ship_no_secret(render_overlays, env):
    assert render_overlays[env].of_kind("Secret") == []


@pytest.mark.parametrize("env", ["staging", "prod"])
def test_staging_and_prod_images_have_fixed_tags(render_overlays, env):
    images = render_overlays[env].images()
    assert "ghcr.io/llm-cost-ops/llm-cost-ops:1.4.2" in images
    for image in images:
        assert image_tag(image) not in (None, "latest"), image


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_no_init_container_runs_migrations(render_overlays, env):
    for obj in render_overlays[env].objects:
        for path, container in obj.containers():
            if "initContainers" in path:
                words = [*container.get("command", []), *container.get("args", [])]
                assert not any("migrate" in str(w) for w in words), f"{obj.ref} {path}"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_all_checks_pass(render_overlays, env_specs, env):
    bundle, spec = render_overlays[env], env_specs[env]
    findings = check_schema(bundle, "1.30") + check_policy(bundle, spec) + check_contract(bundle, spec)
    assert [str(f) for f in errors(findings)] == []
    # What remains are warnings: the ServiceMonitor needs the Prometheus Operator's CRD.
    assert {(f.check, f.rule) for f in findings} == {("schema", "crd-required")}


def test_object_without_namespace_breaks_the_namespace_clause(render_overlays, env_specs):
    stray = ManifestObject({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "stray"}})
    bundle = RenderedBundle.from_objects("staging", [*render_overlays["staging"].objects, stray])
    findings = [f for f in check_contract(bundle, env_specs["staging"]) if f.rule == "namespace"]
    assert [(f.object_ref, f.field) for f in findings] == [("ConfigMap/stray", "metadata.namespace")]


# --- environments.yaml -------------------------------------------------------------------------


def test_loads_the_real_environments(env_specs):
    assert list(env_specs) == ["dev", "staging", "prod"]
    assert {spec.kubernetes_version for spec in env_specs.values()} == {"1.30"}
    assert env_specs["prod"].api.pdb_min_available == 3
    assert env_specs["staging"].namespace == "llm-cost-ops-staging"


def _real(project_root: Path) -> dict:
    return yaml.safe_load((project_root / "environments.yaml").read_text())


def _load_error(path: Path) -> str:
    with pytest.raises(ConfigError) as caught:
        load_environments(path)
    message = str(caught.value)
    assert "\n" not in message
    assert re.match(rf"{re.escape(str(path))}(:\d+)?: ", message), message
    return message


def _write(tmp_path: Path, data) -> Path:
    path = tmp_path / "environments.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_unknown_field(tmp_path, project_root):
    data = _real(project_root)
    data["environments"]["staging"]["api"]["replica"] = 3
    message = _load_error(_write(tmp_path, data))
    assert "environments.staging.api.replica: Extra inputs are not permitted" in message


def test_unknown_defaults_field(tmp_path, project_root):
    data = _real(project_root)
    data["defaults"]["kubernetes_verison"] = "1.31"
    message = _load_error(_write(tmp_path, data))
    assert "defaults.kubernetes_verison: Extra inputs are not permitted" in message


def test_wrong_type(tmp_path, project_root):
    data = _real(project_root)
    data["environments"]["prod"]["api"]["autoscaling"]["max_replicas"] = "fifty"
    message = _load_error(_write(tmp_path, data))
    assert "environments.prod.api.autoscaling.max_replicas: Input should be a valid integer" in message


def test_missing_field(tmp_path, project_root):
    data = _real(project_root)
    del data["environments"]["dev"]["database"]["storage"]
    message = _load_error(_write(tmp_path, data))
    assert "environments.dev.database.storage: Field required" in message


def test_missing_file(tmp_path):
    message = _load_error(tmp_path / "environments.yaml")
    assert message.endswith("file not found")


def test_invalid_yaml(tmp_path):
    path = tmp_path / "environments.yaml"
    path.write_text("environments:\n  dev: {namespace: [unclosed\n")
    message = _load_error(path)
    assert ": invalid YAML: " in message


def test_no_environments(tmp_path):
    message = _load_error(_write(tmp_path, {"environments": {}}))
    assert message.endswith("environments: at least one environment is required")


# --- issue 17: strict input ------------------------------------------------------------------------


def _edit(tmp_path: Path, project_root: Path, old: str, new: str) -> Path:
    text = (project_root / "environments.yaml").read_text()
    assert old in text
    path = tmp_path / "environments.yaml"
    path.write_text(text.replace(old, new, 1))
    return path


def _line(path: Path, text: str, occurrence: int = 1) -> int:
    lines = [n for n, line in enumerate(path.read_text().splitlines(), 1) if text in line]
    return lines[occurrence - 1]


def test_environment_given_twice(tmp_path, project_root):
    path = tmp_path / "environments.yaml"
    path.write_text((project_root / "environments.yaml").read_text() + "  dev:\n    namespace: elsewhere\n")
    message = _load_error(path)
    assert (
        message
        == f"{path}:{_line(path, '  dev:', 2)}: duplicate key 'dev' (first given at line {_line(path, '  dev:')})"
    )


def test_key_given_twice_in_one_mapping(tmp_path, project_root):
    path = _edit(tmp_path, project_root, "      replicas: 1\n", "      replicas: 1\n      replicas: 4\n")
    message = _load_error(path)
    assert message.startswith(f"{path}:{_line(path, 'replicas: 4')}: duplicate key 'replicas'")


@pytest.mark.parametrize(
    ("old", "new", "field", "expected"),
    [
        ("      replicas: 1\n", "      replicas: true\n", "environments.dev.api.replicas", "Input should be a valid integer"),
        ("      replicas: 1\n", '      replicas: "1"\n', "environments.dev.api.replicas", "Input should be a valid integer"),
        ("      replicas: 1\n", "      replicas: 1.0\n", "environments.dev.api.replicas", "Input should be a valid integer"),
        ("max_replicas: 3,", "max_replicas: yes,", "environments.dev.api.autoscaling.max_replicas", "Input should be a valid integer"),
        ("rollout_deadline_seconds: 300", 'rollout_deadline_seconds: "300"', "environments.dev.deploy.rollout_deadline_seconds", "Input should be a valid number"),
        ("rollout_deadline_seconds: 300", "rollout_deadline_seconds: true", "environments.dev.deploy.rollout_deadline_seconds", "Input should be a valid number"),
        ("monitoring: false", 'monitoring: "false"', "environments.dev.monitoring", "Input should be a valid boolean"),
        ("monitoring: false", "monitoring: 0", "environments.dev.monitoring", "Input should be a valid boolean"),
        ('DATABASE_POOL_SIZE: "5"', "DATABASE_POOL_SIZE: 5", "environments.dev.config.DATABASE_POOL_SIZE", "Input should be a valid string"),
        ("namespace: llm-cost-ops-dev", "namespace: 7", "environments.dev.namespace", "Input should be a valid string"),
    ],
)  # fmt: skip
def test_no_silent_coercion(tmp_path, project_root, old, new, field, expected):
    path = _edit(tmp_path, project_root, old, new)
    message = _load_error(path)
    assert f":{_line(path, new.strip())}: {field}: {expected}" in message


@pytest.mark.parametrize("name", ["dev-eu", "dev.eu", "dév"])
def test_environment_name_must_be_a_group_name(tmp_path, project_root, name):
    path = _edit(tmp_path, project_root, "  dev:\n", f"  {name}:\n")
    message = _load_error(path)
    assert message.startswith(
        f"{path}:{_line(path, f'  {name}:')}: environments.{name}: environment names may hold"
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ('"9.99"', "Kubernetes 9.99 is newer than the schemas shipped"),
        ('"1.99"', "Kubernetes 1.99 is newer than the schemas shipped"),
        ('"1.2"', "Kubernetes 1.2 is older than the schemas shipped"),
        ('"one.thirty"', "'one.thirty' is not a Kubernetes version like 1.30"),
        ('"1.30; rm"', "is not a Kubernetes version"),
        ("1.30", "Input should be a valid string"),
    ],
)
def test_kubernetes_version_is_checked_at_load(tmp_path, project_root, value, expected):
    path = _edit(tmp_path, project_root, 'kubernetes_version: "1.30"', f"kubernetes_version: {value}")
    message = _load_error(path)
    assert f"{path}:{_line(path, 'kubernetes_version:')}: defaults.kubernetes_version: " in message
    assert expected in message


def test_kubernetes_version_per_environment(tmp_path, project_root):
    path = _edit(
        tmp_path,
        project_root,
        "    namespace: llm-cost-ops-prod\n",
        '    namespace: llm-cost-ops-prod\n    kubernetes_version: "v2.0"\n',
    )
    message = _load_error(path)
    assert (
        "environments.prod.kubernetes_version: Value error, Kubernetes v2.0 is newer than the schemas shipped"
        in message
    )
