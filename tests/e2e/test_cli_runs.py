"""`llm-cost-ops-ops run`, the documented CLI path: runs of the instance, through its queue, seen by the
run-failure notifier, as a person runs it from the project root with a fresh DAGSTER_HOME (the
project's dagster.yaml: QueuedRunCoordinator with the env-lock limit) and no daemon running.

Cases:
- a failing migrate_dev (a DSN that does not parse) exits 1; it printed the run id and its UI link
  first, and its summary starts with the one-line cause; the run belongs to the code location
  (`llm_cost_ops_ops`, so it shows in the job's history), carries the env-lock tag and was enqueued
  and started by the daemon; the notifier posted it to a local webhook receiver before the command
  ended; no process the command started (daemon, code servers, run worker) is left;
- two commands started together on one instance with no daemon (two dev plan deploys): exactly
  one starts a daemon (the other sees it beat), the env-lock runs them one after the other (the
  second starts after the first ended), both succeed, and the daemon's owner keeps it until the
  other command's run ended, so no run worker is killed; nothing is left;
(The plan's output: test_cli_deploy.py; -v: test_cli.py.)
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest

from llm_cost_ops_ops.defs.keys import ENV_LOCK_TAG
from tests.processes import processes_with_home
from tests.webhook_receiver import WebhookReceiver

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

BIN = Path(sys.executable).parent
BAD_DSN = "NotADsnButAPassw0rd"


@pytest.fixture
def dagster_home(queued_dagster_home) -> Path:
    return queued_dagster_home


def _run(args: list[str], project_root: Path, home: Path, **extra: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DAGSTER_HOME": str(home), **extra}
    for name in ("LLM_COST_OPS_OPS_ROOT", "KUBECONFIG", "LLM_COST_OPS_OPS_WEBHOOK_URL"):
        if name not in extra:
            env.pop(name, None)
    return subprocess.run(
        [str(BIN / "llm-cost-ops-ops"), "run", *args],
        cwd=project_root,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


def _processes_of(home: Path) -> list[str]:
    """Processes whose environment points at `home` (what the command started)."""
    return list(processes_with_home(home).values())


def _left_over(home: Path, seconds: float = 10.0) -> list[str]:
    deadline = time.monotonic() + seconds
    while (left := _processes_of(home)) and time.monotonic() < deadline:
        time.sleep(0.5)
    return left


def test_failing_run_is_queued_and_notified(project_root, dagster_home):
    with WebhookReceiver() as receiver:
        done = _run(
            ["migrate", "dev", "-c", "jobs/migrate/dev.yaml", "--ui-url", "http://ui.example:3000"],
            project_root,
            dagster_home,
            LLM_COST_OPS_OPS_DEV_DATABASE_URL=BAD_DSN,
            LLM_COST_OPS_OPS_WEBHOOK_URL=receiver.url("/hook"),
        )
        bodies = receiver.bodies("/hook")

    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    assert BAD_DSN not in output
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        # The daemon also runs the location's sensors (the status refresh may queue a run of its own).
        [run] = instance.get_runs(filters=dg.RunsFilter(job_name="migrate_dev"))
        assert run.status == dg.DagsterRunStatus.FAILURE
        assert run.remote_job_origin.location_name == "llm_cost_ops_ops"
        assert run.tags[ENV_LOCK_TAG] == "dev"
        kinds = {
            r.event_log_entry.dagster_event_type for r in instance.get_records_for_run(run.run_id).records
        }
        assert {dg.DagsterEventType.RUN_ENQUEUED, dg.DagsterEventType.RUN_STARTING} <= kinds

    lines = done.stdout.splitlines()
    assert any(
        f"run {run.run_id} (migrate_dev): http://ui.example:3000/runs/{run.run_id}" == line
        for line in lines[:3]
    ), lines[:3]
    summary = lines[lines.index("") + 1 :]
    assert summary[0].startswith("FAILURE in step "), summary
    assert "llm_cost_ops_ops.postgres.errors.InvalidDsn: " in summary[0]
    assert "notification sent (notify_run_failures)" in done.stdout

    [body] = [b for b in bodies if b.get("run_id") == run.run_id]
    assert body["job"] == "migrate_dev"
    assert body["environment"] == "dev"
    assert body["summary"].startswith("llm_cost_ops_ops.postgres.errors.InvalidDsn: ")
    assert BAD_DSN not in str(bodies)
    assert not _left_over(dagster_home)


def test_two_commands_share_one_daemon_and_the_env_lock(project_root, dagster_home):
    env = {**os.environ, "DAGSTER_HOME": str(dagster_home)}
    for name in ("LLM_COST_OPS_OPS_ROOT", "KUBECONFIG", "LLM_COST_OPS_OPS_WEBHOOK_URL"):
        env.pop(name, None)
    command = [str(BIN / "llm-cost-ops-ops"), "run", "deploy", "dev", "-c", "jobs/deploy/dev.plan.yaml"]
    both = [
        subprocess.Popen(
            command, cwd=project_root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        for _ in range(2)
    ]
    outputs = [process.communicate(timeout=300)[0] for process in both]

    assert [process.returncode for process in both] == [0, 0], outputs
    assert sum("started `dagster-daemon run`" in output for output in outputs) == 1, outputs
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        runs = instance.get_runs(filters=dg.RunsFilter(job_name="deploy_dev"))
        assert [run.status for run in runs] == [dg.DagsterRunStatus.SUCCESS] * 2
        first, second = sorted(
            (instance.get_run_record_by_id(run.run_id) for run in runs), key=lambda r: r.start_time
        )
        assert second.start_time >= first.end_time  # one env-lock: the second waited in the queue
    assert not _left_over(dagster_home)
