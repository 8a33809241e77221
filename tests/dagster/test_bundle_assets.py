"""The <env>_manifests assets and their blocking checks, run in process (llm_cost_ops_ops.defs.bundles).

Cases:
- the real render_and_check job succeeds with all 12 checks (4 per environment) passing;
- each materialization records the digest (sha256:, the digest of the stored bundle), object count,
  objects by kind, images, namespace and a markdown table of the objects with their source files;
- each check reports errors/warnings counts in its metadata, the schema check its target version;
- blocking: in a copy of the project whose staging overlay has 3 API replicas, the staging contract
  check fails with a description naming the object, field and rule, the asset downstream of
  staging_manifests does not materialize, and dev's and prod's assets (and dev's downstream) do;
- a render error (staging overlay missing) fails the staging materialization with the one-line
  RenderError message while dev and prod still materialize;
- PlatformManifests refuses an environment that is not in environments.yaml;
- a `project_dir` override holds for the whole run: definitions built from this checkout, run on a
  copy whose environments.yaml and overlay both say 3 staging replicas, check the copy's render
  against the copy's contract (passes); an override that moves staging to another namespace fails
  the staging bundle with one line before anything renders.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg
import pytest

from llm_cost_ops_ops.bundles.store import BundleStore
from llm_cost_ops_ops.definitions import defs
from llm_cost_ops_ops.defs.bundles import bundle_definitions
from llm_cost_ops_ops.defs.keys import manifests_key
from llm_cost_ops_ops.defs.resources import BundleIOManager, PlatformManifests
from llm_cost_ops_ops.environments import load_environments
from llm_cost_ops_ops.errors import ConfigError

pytestmark = pytest.mark.dagster

ENVIRONMENTS = ("dev", "staging", "prod")
CHECKS = ("schema", "policy", "contract", "references")


def _materializations(result: dg.ExecuteInProcessResult) -> dict[str, dg.AssetMaterialization]:
    return {
        event.materialization.asset_key.to_user_string(): event.materialization
        for event in result.get_asset_materialization_events()
    }


def _evaluations(result: dg.ExecuteInProcessResult) -> dict[str, dg.AssetCheckEvaluation]:
    return {
        f"{ev.asset_key.to_user_string()}:{ev.check_name}": ev for ev in result.get_asset_check_evaluations()
    }


# --- the real job ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def real_run(tmp_path_factory):
    instance = dg.DagsterInstance.ephemeral(tempdir=str(tmp_path_factory.mktemp("dagster_home")))
    result = defs.resolve_job_def("render_and_check").execute_in_process(instance=instance)
    return instance, result


def test_render_and_check_succeeds_with_every_check_passing(real_run):
    _, result = real_run
    assert result.success
    evaluations = _evaluations(result)
    assert evaluations.keys() == {f"{env}_manifests:{check}" for env in ENVIRONMENTS for check in CHECKS}
    assert all(ev.passed for ev in evaluations.values())
    assert all(ev.description is None for ev in evaluations.values())


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_materialization_metadata(real_run, env):
    instance, result = real_run
    metadata = {k: v.value for k, v in _materializations(result)[f"{env}_manifests"].metadata.items()}
    assert metadata["digest"].startswith("sha256:")
    stored = BundleStore(Path(instance.storage_directory()) / "bundles").get(metadata["digest"])
    assert stored.environment == env
    assert metadata["namespace"] == f"llm-cost-ops-{env}"
    assert metadata["object_count"] == len(stored.objects) == sum(metadata["objects_by_kind"].values())
    assert metadata["objects_by_kind"]["Deployment"] == (1 if env == "dev" else 3)
    assert metadata["objects_by_kind"]["StatefulSet"] == 1
    app_image = "ghcr.io/llm-cost-ops/llm-cost-ops:" + ("latest" if env == "dev" else "1.4.2")
    assert app_image in metadata["images"]
    assert "postgres:16.6-alpine" in metadata["images"]
    assert metadata["kustomize_warnings"] == []
    table = metadata["objects"].splitlines()
    assert table[0] == "| kind | namespace | name | source |"
    assert len(table) == 2 + metadata["object_count"]
    assert f"| Deployment | llm-cost-ops-{env} | llm-cost-ops | manifests/base/deployment.yaml |" in table


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_check_metadata(real_run, env):
    _, result = real_run
    evaluations = _evaluations(result)
    for check in CHECKS:
        metadata = {k: v.value for k, v in evaluations[f"{env}_manifests:{check}"].metadata.items()}
        assert metadata["errors"] == 0
        assert metadata["rules_broken"] == []
    schema = {k: v.value for k, v in evaluations[f"{env}_manifests:schema"].metadata.items()}
    assert schema["kubernetes_version"] == "1.30"
    # The ServiceMonitor's CRD requirement is a warning, listed but not failing.
    assert schema["warnings"] == 1
    assert "crd-required" in schema["findings"]


# --- a broken copy of the project --------------------------------------------------------------


@pytest.fixture
def project_copy(tmp_path, project_root) -> Path:
    root = tmp_path / "project"
    shutil.copytree(project_root / "manifests", root / "manifests")
    shutil.copy(project_root / "environments.yaml", root / "environments.yaml")
    return root


def _run_with_downstream(
    root: Path, tmp_path: Path, specs_from: Path | None = None
) -> tuple[dg.ExecuteInProcessResult, list[str]]:
    """Every environment's bundle plus a rollout asset downstream of dev and of staging."""
    ran: list[str] = []

    @dg.asset(deps=[manifests_key("staging")])
    def staging_rollout() -> None:
        ran.append("staging")

    @dg.asset(deps=[manifests_key("dev")])
    def dev_rollout() -> None:
        ran.append("dev")

    specs = load_environments((specs_from or root) / "environments.yaml")
    test_defs = dg.Definitions.merge(
        *(bundle_definitions(spec) for spec in specs.values()),
        dg.Definitions(
            assets=[staging_rollout, dev_rollout],
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
    return result, ran


def test_failed_contract_check_blocks_only_its_downstream(project_copy, tmp_path):
    overlay = project_copy / "manifests" / "overlays" / "staging" / "kustomization.yaml"
    text = overlay.read_text()
    assert "count: 2" in text
    overlay.write_text(text.replace("count: 2", "count: 3"))

    result, ran = _run_with_downstream(project_copy, tmp_path)

    assert not result.success
    evaluations = _evaluations(result)
    failed = {key for key, ev in evaluations.items() if not ev.passed}
    assert failed == {"staging_manifests:contract"}
    assert len(evaluations) == len(ENVIRONMENTS) * len(CHECKS)
    contract = evaluations["staging_manifests:contract"]
    assert contract.description == (
        "[staging] Deployment/llm-cost-ops-staging/llm-cost-ops spec.replicas: "
        "expected 2 (environments.yaml), rendered 3 (rule contract/api)"
    )
    assert contract.metadata["rules_broken"].value == ["api"]

    materialized = _materializations(result).keys()
    assert {"dev_manifests", "staging_manifests", "prod_manifests", "dev_rollout"} <= materialized
    assert "staging_rollout" not in materialized
    assert ran == ["dev"]


def test_render_error_fails_the_materialization_with_one_line(project_copy, tmp_path):
    shutil.rmtree(project_copy / "manifests" / "overlays" / "staging")

    result, ran = _run_with_downstream(project_copy, tmp_path)

    assert not result.success
    [failure] = [e for e in result.get_step_failure_events() if e.step_key == "staging_manifests"]
    cause = failure.step_failure_data.error.cause
    assert cause.cls_name == "RenderError"
    message = cause.message.strip()
    assert message.endswith(
        "staging: overlay manifests/overlays/staging not found (no kustomization.yaml there)"
    )
    assert "\n" not in message
    materialized = _materializations(result).keys()
    assert {"dev_manifests", "prod_manifests"} <= materialized
    assert "staging_manifests" not in materialized
    assert not any(key.startswith("staging_manifests:") for key in _evaluations(result))
    assert ran == ["dev"]


def test_unknown_environment_is_a_config_error(project_copy):
    manifests = PlatformManifests(project_dir=str(project_copy))
    with pytest.raises(ConfigError, match=r"environments\.yaml: no environment named 'qa'"):
        manifests.render("qa")


def test_project_dir_override_holds_for_the_whole_run(project_copy, project_root, tmp_path):
    overlay = project_copy / "manifests" / "overlays" / "staging" / "kustomization.yaml"
    overlay.write_text(overlay.read_text().replace("count: 2", "count: 3"))
    environments = project_copy / "environments.yaml"
    text = environments.read_text()
    assert text.count("      replicas: 2\n") == 1
    environments.write_text(text.replace("      replicas: 2\n", "      replicas: 3\n"))

    result, ran = _run_with_downstream(project_copy, tmp_path, specs_from=project_root)

    failed = {key for key, ev in _evaluations(result).items() if not ev.passed}
    assert failed == set(), [ev.description for ev in _evaluations(result).values() if not ev.passed]
    assert sorted(ran) == ["dev", "staging"]


def test_an_override_never_moves_where_a_run_writes(project_copy, project_root, tmp_path):
    environments = project_copy / "environments.yaml"
    environments.write_text(
        environments.read_text().replace("namespace: llm-cost-ops-staging", "namespace: llm-cost-ops-qa")
    )

    result, ran = _run_with_downstream(project_copy, tmp_path, specs_from=project_root)

    [failure] = [e for e in result.get_step_failure_events() if e.step_key == "staging_manifests"]
    message = failure.step_failure_data.error.cause.message.strip()
    assert message.endswith(
        "staging.namespace is 'llm-cost-ops-qa' there but 'llm-cost-ops-staging' in the loaded code "
        "location; a run never changes where it writes (load the code location from that project instead)"
    )
    assert "staging_manifests" not in _materializations(result) and ran == ["dev"]
