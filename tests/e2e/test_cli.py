"""The command lines the README documents, run as a person would from the project root.

Cases:
- `dg check defs` (Dagster's validation command) exits 0 and loads every definition;
- `llm-cost-ops-ops run render_and_check dev -c jobs/render_and_check/dev.yaml` exits 0 against a
  fresh DAGSTER_HOME, the instance there records one successful run whose four checks passed, and
  the summary lists each check; with -v the Dagster event log comes first.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

BIN = Path(sys.executable).parent


@pytest.fixture
def dagster_home(tmp_path) -> Path:
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("")
    return home


def _run(args: list[str], project_root: Path, dagster_home: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "DAGSTER_HOME": str(dagster_home)}
    env.pop("LLM_COST_OPS_OPS_ROOT", None)
    return subprocess.run(
        [str(BIN / args[0]), *args[1:]],
        cwd=project_root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_definitions_validate(project_root, dagster_home):
    done = _run(["dg", "check", "defs"], project_root, dagster_home)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "All definitions loaded successfully" in done.stdout + done.stderr


def test_run_render_and_check_dev(project_root, dagster_home):
    done = _run(
        ["llm-cost-ops-ops", "run", "render_and_check", "dev", "-c", "jobs/render_and_check/dev.yaml", "-v"],
        project_root,
        dagster_home,
    )
    assert done.returncode == 0, done.stdout + done.stderr

    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        [run] = instance.get_runs(filters=dg.RunsFilter(job_name="render_and_check_dev"))
        assert run.status == dg.DagsterRunStatus.SUCCESS
        records = instance.get_records_for_run(run.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION)
        evaluations = [r.event_log_entry.dagster_event.asset_check_evaluation_data for r in records.records]
        assert sorted(e.check_name for e in evaluations) == ["contract", "policy", "references", "schema"]
        assert all(e.passed for e in evaluations)
    for name in ("contract", "policy", "references", "schema"):
        assert any(
            line.startswith("  pass ") and line.split()[2] == name for line in done.stdout.splitlines()
        )
    assert " RUN_ENQUEUED - " in done.stdout
