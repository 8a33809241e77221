"""An environment with `renderer: helm`, through the same assets and blocking checks (defs.bundles).

Cases:
- in a copy of the project whose staging renders with Helm, every environment's bundle
  materializes and all 12 checks pass; staging's asset is of kind helm, its objects name their
  templates and its schema check ran Helm's lint (the kubernetes_version recorded as usual);
- the Helm bundle of staging holds the same objects as its kustomize bundle (normalised), so the
  deploy engine, ledger and prune see what they always see;
- the schema check lints the chart the bundle came from: a chart whose kubeVersion does not
  admit the target fails staging's schema check only;
- a values file that does not match values.schema.json fails staging's materialization with the one
  RenderError line naming the values file, line, field and value; dev and prod still materialize.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg
import pytest

from llm_cost_ops_ops.bundles.equivalence import bundle_differences
from llm_cost_ops_ops.bundles.store import BundleStore
from llm_cost_ops_ops.defs.bundles import bundle_definitions
from llm_cost_ops_ops.defs.resources import BundleIOManager, PlatformManifests
from llm_cost_ops_ops.environments import load_environments

pytestmark = pytest.mark.dagster


@pytest.fixture
def helm_project(tmp_path, project_root) -> Path:
    root = tmp_path / "project"
    shutil.copytree(project_root / "manifests", root / "manifests")
    shutil.copytree(project_root / "charts", root / "charts")
    text = (project_root / "environments.yaml").read_text()
    (root / "environments.yaml").write_text(
        text.replace("  staging:\n", "  staging:\n    renderer: helm\n", 1)
    )
    return root


def _run(root: Path, tmp_path: Path) -> tuple[dg.ExecuteInProcessResult, dg.Definitions]:
    specs = load_environments(root / "environments.yaml")
    test_defs = dg.Definitions.merge(
        *(bundle_definitions(spec) for spec in specs.values()),
        dg.Definitions(
            jobs=[dg.define_asset_job("everything", selection=dg.AssetSelection.all())],
            executor=dg.in_process_executor,
            resources={
                "manifests": PlatformManifests(project_dir=str(root)),
                "bundle_io_manager": BundleIOManager(base_dir=str(tmp_path / "bundles")),
            },
        ),
    )
    instance = dg.DagsterInstance.ephemeral(tempdir=str(tmp_path / "dagster_home"))
    result = test_defs.resolve_job_def("everything").execute_in_process(
        instance=instance, raise_on_error=False
    )
    return result, test_defs


def _evaluations(result: dg.ExecuteInProcessResult) -> dict[str, dg.AssetCheckEvaluation]:
    return {f"{e.asset_key.to_user_string()}:{e.check_name}": e for e in result.get_asset_check_evaluations()}


def _digest(result: dg.ExecuteInProcessResult, env: str) -> str:
    [event] = [
        e for e in result.get_asset_materialization_events() if e.asset_key == dg.AssetKey(f"{env}_manifests")
    ]
    return str(event.materialization.metadata["digest"].value)


def test_helm_environment_passes_every_check(helm_project, tmp_path, render_overlays):
    result, test_defs = _run(helm_project, tmp_path)
    assert result.success
    evaluations = _evaluations(result)
    assert len(evaluations) == 12 and all(e.passed for e in evaluations.values())
    assert evaluations["staging_manifests:schema"].metadata["kubernetes_version"].value == "1.30"
    spec = test_defs.resolve_assets_def(dg.AssetKey("staging_manifests")).specs_by_key
    assert "helm" in next(iter(spec.values())).kinds
    bundle = BundleStore(tmp_path / "bundles").get(_digest(result, "staging"))
    assert bundle.find("Deployment", "llm-cost-ops").source == (
        "charts/llm-cost-ops/templates/deployment.yaml (Helm template)"
    )
    assert bundle_differences(render_overlays["staging"], bundle, ("kustomize", "helm")) == []


def test_schema_check_lints_the_chart_it_rendered(helm_project, tmp_path):
    chart_yaml = helm_project / "charts/llm-cost-ops/Chart.yaml"
    chart_yaml.write_text(chart_yaml.read_text().replace(">=1.25.0-0", ">=1.31.0-0"))
    result, _ = _run(helm_project, tmp_path)
    failed = {key: e for key, e in _evaluations(result).items() if not e.passed}
    assert failed.keys() == {"staging_manifests:schema"}
    assert failed["staging_manifests:schema"].description.startswith(
        "[staging] - charts/llm-cost-ops/Chart.yaml:kubeVersion: kubeVersion '>=1.31.0-0' does not admit"
    )


def test_values_error_fails_the_materialization_with_one_line(helm_project, tmp_path):
    values = helm_project / "charts/llm-cost-ops/values-staging.yaml"
    values.write_text(values.read_text().replace("  replicas: 2\n", "  replicas: two\n"))
    result, _ = _run(helm_project, tmp_path)
    [failure] = [e for e in result.get_step_failure_events() if e.step_key == "staging_manifests"]
    cause = failure.step_failure_data.error.cause
    assert cause.cls_name == "RenderError"
    assert cause.message.strip().endswith(
        "staging: helm chart charts/llm-cost-ops: charts/llm-cost-ops/values-staging.yaml:12: api.replicas: "
        "got string, want integer (given: 'two'), against charts/llm-cost-ops/values.schema.json"
    )
    materialized = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert materialized == {"dev_manifests", "prod_manifests"}
