"""The production instance configuration, `deploy/dagster/dagster.yaml`, against a real PostgreSQL.

The K8sRunLauncher cannot launch pods here, so the run test copies the file into a temporary
DAGSTER_HOME with only `run_launcher` replaced by the DefaultRunLauncher: what it proves is the
rest of the file, i.e. run/event-log/schedule storage in PostgreSQL (dagster-postgres through the
psycopg2 scheme SQLAlchemy 2.1 needs), the queued run coordinator, the concurrency limits, run
monitoring and retries settings, all accepted by Dagster 1.13 and used by a real run.

Cases:
- psycopg2 (which dagster-postgres uses) is importable;
- the unmodified file loads into a DagsterInstance whose storage is PostgreSQL, with the
  concurrency and run-monitoring settings it declares, and its K8sRunLauncher section validates
  against dagster-k8s's own config schema (instantiating it needs in-cluster credentials);
- `dagster job execute -m llm_cost_ops_ops.definitions -j render_and_check_dev` with that file
  (run launcher swapped) exits 0, and the run is stored in PostgreSQL with status SUCCESS, both as
  Dagster reads it and as a row in the `runs` table.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import psycopg
import pytest
import yaml

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

BIN = Path(sys.executable).parent
JOB = "render_and_check_dev"


def _psycopg2_url(dsn: str) -> str:
    scheme, rest = dsn.split("://", 1)
    assert scheme in ("postgresql", "postgres"), dsn
    return f"postgresql+psycopg2://{rest}"


@pytest.fixture
def production_yaml(project_root: Path) -> dict:
    return yaml.safe_load((project_root / "deploy" / "dagster" / "dagster.yaml").read_text())


@pytest.fixture
def pg_url(pg_database: str, monkeypatch: pytest.MonkeyPatch) -> str:
    url = _psycopg2_url(pg_database)
    monkeypatch.setenv("DAGSTER_PG_URL", url)
    return url


def _home(tmp_path: Path, config: dict) -> Path:
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return home


def test_psycopg2_is_importable():
    import psycopg2

    assert psycopg2.__version__


def test_unmodified_file_is_an_instance_dagster_accepts(
    tmp_path, production_yaml, pg_url, monkeypatch: pytest.MonkeyPatch
):
    from dagster._config import process_config
    from dagster_k8s import K8sRunLauncher
    from dagster_postgres import PostgresRunStorage

    monkeypatch.setenv("DAGSTER_RUN_NAMESPACE", "dagster")
    monkeypatch.setenv("DAGSTER_INSTANCE_CONFIG_MAP", "dagster-instance")
    home = _home(tmp_path, production_yaml)

    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert isinstance(instance.run_storage, PostgresRunStorage)
        assert instance.run_monitoring_enabled
        assert instance.run_monitoring_max_resume_run_attempts == 0
        limits = instance.get_concurrency_config().run_queue_config.tag_concurrency_limits
        assert [limit["key"] for limit in limits] == ["llm-cost-ops-ops/env-lock"]
        launcher = instance.get_ref().run_launcher_data
        assert launcher is not None
        assert (launcher.module_name, launcher.class_name) == ("dagster_k8s", "K8sRunLauncher")
        result = process_config(K8sRunLauncher.config_type(), yaml.safe_load(launcher.config_yaml))
        assert result.success, [error.message for error in result.errors or []]
        assert result.value is not None
        assert result.value["job_namespace"] == "dagster"


def test_run_is_stored_in_postgres(tmp_path, project_root, production_yaml, pg_url, pg_database):
    config = {
        **production_yaml,
        "run_launcher": {"module": "dagster.core.launcher", "class": "DefaultRunLauncher"},
    }
    home = _home(tmp_path, config)
    env = {**os.environ, "DAGSTER_HOME": str(home), "DAGSTER_PG_URL": pg_url}
    env.pop("LLM_COST_OPS_OPS_ROOT", None)
    done = subprocess.run(
        [str(BIN / "dagster"), "job", "execute", "-m", "llm_cost_ops_ops.definitions", "-j", JOB],
        cwd=project_root,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr

    with dg.DagsterInstance.from_config(str(home)) as instance:
        runs = instance.get_runs(dg.RunsFilter(job_name=JOB))
        assert [run.status for run in runs] == [dg.DagsterRunStatus.SUCCESS]
        run_id = runs[0].run_id

    with psycopg.connect(pg_database) as conn:
        rows = conn.execute("SELECT run_id, pipeline_name, status FROM runs").fetchall()
    assert rows == [(run_id, JOB, "SUCCESS")]
