"""The deploy command line the README documents, run from the project root with no cluster anywhere.

Cases:
- `llm-cost-ops-ops run deploy dev -c jobs/deploy/dev.plan.yaml` (what `make run` does) exits 0 with a
  fresh DAGSTER_HOME, no KUBECONFIG and a HOME without ~/.kube; the instance records one successful
  deploy_dev run that materialized dev_manifests and observed dev_deployed in plan mode (every object
  `add` against no previous release) without materializing it; its output ends with the plan: the
  waves with each object's change and `writes if applied`, no DEBUG events.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from llm_cost_ops_ops.defs.keys import deployed_key, manifests_key

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

BIN = Path(sys.executable).parent
DEPLOYED_DEV = deployed_key("dev")


@pytest.fixture
def dagster_home(tmp_path) -> Path:
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("")
    return home


def _launch(config: str, project_root: Path, dagster_home: Path, home: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "DAGSTER_HOME": str(dagster_home), "HOME": str(home)}
    for name in ("KUBECONFIG", "KUBERNETES_SERVICE_HOST", "LLM_COST_OPS_OPS_ROOT"):
        env.pop(name, None)
    return subprocess.run(
        [str(BIN / "llm-cost-ops-ops"), "run", "deploy", "dev", "--config", config],
        cwd=project_root,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def test_run_deploy_dev_plan(project_root, dagster_home, tmp_path):
    home = tmp_path / "home"
    home.mkdir()

    done = _launch("jobs/deploy/dev.plan.yaml", project_root, dagster_home, home)

    assert done.returncode == 0, done.stdout + done.stderr
    assert not (home / ".kube").exists()
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        [run] = instance.get_runs(filters=dg.RunsFilter(job_name="deploy_dev"))
        assert run.status == dg.DagsterRunStatus.SUCCESS
        records = instance.get_records_for_run(run.run_id, of_type=dg.DagsterEventType.ASSET_OBSERVATION)
        [observation] = [
            r.event_log_entry.dagster_event.event_specific_data.asset_observation for r in records.records
        ]
        assert observation.asset_key == DEPLOYED_DEV
        metadata = {k: v.value for k, v in observation.metadata.items()}
        assert metadata["mode"] == "plan"
        assert metadata["previous_digest"] == "none"
        changes = metadata["changes"]
        assert changes["add"] > 20
        assert changes == {"add": changes["add"], "change": 0, "same": 0, "remove": 0}
        assert instance.get_latest_materialization_event(DEPLOYED_DEV) is None
        bundle = instance.get_latest_materialization_event(manifests_key("dev"))
        assert bundle.asset_materialization.metadata["digest"].value == metadata["digest"]

    lines = done.stdout.splitlines()
    assert lines[-1] == f"  writes if applied: {changes['add']}", lines[-5:]
    title = f"{DEPLOYED_DEV.to_user_string()}: plan against no previous release"
    plan = lines[next(i for i, line in enumerate(lines) if line.startswith(title)) :]
    assert "  wave database" in plan
    assert "    + create  StatefulSet/llm-cost-ops-dev/postgres" in plan
    assert not any("DEBUG" in line for line in lines)
