"""The code location's definitions (llm_cost_ops_ops.definitions) and the run-config files in jobs/.

Cases:
- definitions load and validate, every job resolves;
- the bundle asset keys are dev_manifests, staging_manifests and prod_manifests, each with blocking
  schema, policy, contract and references checks;
- the render jobs select the right assets and run in process;
- loading the definitions renders nothing (no subprocess is started);
- every jobs/<operation>/<env>[.<variant>].yaml validates against job <operation>_<env>, and
  jobs/<operation>/all.yaml against job <operation>;
- a run-config file with a renamed field fails validation, naming the field;
- every job has a description;
- every asset's last key part (the UI's label) is unique and reads <env>_<stage>, in group <env>;
- the bundle check names keys.py gives the bundle IO manager are the checks bundles.py defines.
"""

from __future__ import annotations

import importlib
import subprocess
from pathlib import Path

import dagster as dg
import pytest
import yaml

from llm_cost_ops_ops import definitions
from llm_cost_ops_ops.defs.bundles import CHECKS
from llm_cost_ops_ops.defs.keys import BUNDLE_CHECKS, STAGES

pytestmark = pytest.mark.dagster

ROOT = Path(__file__).resolve().parents[2]
RUN_CONFIGS = sorted((ROOT / "jobs").glob("*/*.yaml"))
ENVIRONMENTS = ("dev", "staging", "prod")


def _job_for(config_file: Path) -> str:
    # jobs/<operation>/<env>[.<variant>].yaml runs job <operation>_<env>; all.yaml runs <operation>.
    operation, env = config_file.parent.name, config_file.name.split(".")[0]
    return operation if env == "all" else f"{operation}_{env}"


def test_definitions_load_and_validate():
    dg.Definitions.validate_loadable(definitions.defs)


def test_every_job_resolves():
    jobs = {job.name: job for job in definitions.defs.resolve_all_job_defs()}
    expected = {"render_and_check", *(f"render_and_check_{env}" for env in ENVIRONMENTS)}
    assert expected <= jobs.keys()
    for name in expected:
        assert jobs[name].executor_def.name == "in_process"


def test_bundle_asset_keys():
    keys = {key.to_user_string() for key in definitions.defs.resolve_all_asset_keys()}
    assert {key for key in keys if key.endswith("_manifests")} == {f"{env}_manifests" for env in ENVIRONMENTS}


def test_every_bundle_has_four_blocking_checks():
    graph = definitions.defs.resolve_asset_graph()
    checks = {
        (key.asset_key.to_user_string(), key.name): key
        for key in graph.asset_check_keys
        if key.asset_key.to_user_string().endswith("_manifests")
    }
    assert checks.keys() == {
        (f"{env}_manifests", check)
        for env in ENVIRONMENTS
        for check in ("schema", "policy", "contract", "references")
    }
    for key in checks.values():
        assert graph.get_check_spec(key).blocking, key.to_user_string()


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_render_job_selects_one_environment(env):
    job = definitions.defs.resolve_job_def(f"render_and_check_{env}")
    assert job.asset_layer.executable_asset_keys == {dg.AssetKey(f"{env}_manifests")}
    assert job.tags["env"] == env


def test_render_job_selects_every_environment():
    job = definitions.defs.resolve_job_def("render_and_check")
    assert job.asset_layer.executable_asset_keys == {dg.AssetKey(f"{env}_manifests") for env in ENVIRONMENTS}


def test_loading_definitions_renders_nothing(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError(f"subprocess started while loading definitions: {args}")

    monkeypatch.setattr(subprocess, "run", refuse)
    monkeypatch.setattr(subprocess, "Popen", refuse)
    reloaded = importlib.reload(definitions)
    assert len(reloaded.defs.resolve_all_job_defs()) >= 4


def test_there_are_run_config_files():
    assert {path.relative_to(ROOT).as_posix() for path in RUN_CONFIGS} >= {
        "jobs/render_and_check/all.yaml",
        "jobs/render_and_check/dev.yaml",
        "jobs/render_and_check/staging.yaml",
        "jobs/render_and_check/prod.yaml",
    }


@pytest.mark.parametrize(
    "config_file", RUN_CONFIGS, ids=[p.relative_to(ROOT / "jobs").as_posix() for p in RUN_CONFIGS]
)
def test_run_config_file_validates_against_its_job(config_file):
    job = definitions.defs.resolve_job_def(_job_for(config_file))
    dg.validate_run_config(job, yaml.safe_load(config_file.read_text()))


def test_renamed_field_fails_validation():
    config_file = ROOT / "jobs" / "render_and_check" / "staging.yaml"
    config = yaml.safe_load(config_file.read_text().replace("kubernetes_version:", "kubernetes_versoin:"))
    job = definitions.defs.resolve_job_def("render_and_check_staging")
    with pytest.raises(dg.DagsterInvalidConfigError, match='unexpected config entry "kubernetes_versoin"'):
        dg.validate_run_config(job, config)


def test_every_job_says_what_it_does():
    # Dagster's implicit `__ASSET_JOB` is not listed in the UI's jobs.
    jobs = [job for job in definitions.defs.resolve_all_job_defs() if not job.name.startswith("__")]
    assert len(jobs) > 30
    assert [job.name for job in jobs if len((job.description or "").strip()) < 20] == []


def test_asset_labels_name_stage_and_environment():
    # The UI's graph labels a node by the last part of its key: it must be unique and carry both.
    keys = definitions.defs.resolve_asset_graph().get_all_asset_keys()
    labels = [key.path[-1] for key in keys]
    assert len(set(labels)) == len(labels)
    for key in keys:
        env, _, stage = key.path[-1].partition("_")
        assert env in ENVIRONMENTS and stage in STAGES, key
        spec = definitions.defs.resolve_assets_def(key).specs_by_key[key]
        assert spec.group_name == env and spec.tags["env"] == env


def test_bundle_check_names_are_the_checks_defined():
    assert tuple(CHECKS) == BUNDLE_CHECKS
