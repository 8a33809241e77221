"""The operator declaration (llm_cost_ops_ops/operator_declaration.py, issue 11): automation that
writes is on only where this Dagster instance is declared the operator of the environment.

Cases:
- LLM_COST_OPS_OPS_OPERATES unset or empty declares nothing; `dev, staging` declares those two; an
  unknown name fails with one line naming the variable, the name and the known environments;
- the code location as loaded here (nothing declared, like `make dev` on dagster_home/): every
  rollout and self-heal sensor and every backup and restore-drill schedule is STOPPED, the
  description saying it is not the operator and what to set, even where schedules/*.yaml enables
  it; the read-only hourly drift check keeps the status its file gives it;
- declared the operator of staging (a fresh process loading the code location): staging's sensors
  and its nightly backup and weekly drill are RUNNING, prod's and dev's stay STOPPED;
- a schedule whose job's operation is unknown counts as writing;
- `make dev` prints what this instance operates before it starts Dagster, and
  `python -m llm_cost_ops_ops.operator_declaration` prints that line (an unknown name: one error line).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from llm_cost_ops_ops.defs.schedules import schedule_definitions
from llm_cost_ops_ops.defs.sensors import sensor_definitions
from llm_cost_ops_ops.errors import ConfigError
from llm_cost_ops_ops.operator_declaration import OPERATES_VARIABLE, load_operator
from llm_cost_ops_ops.schedules import ScheduleSpec

pytestmark = pytest.mark.dagster

ROOT = Path(__file__).resolve().parents[2]
ENVIRONMENTS = ("dev", "staging", "prod")
WRITING_SCHEDULES = ("nightly_backup", "weekly_restore_drill")


def _statuses(environ: dict[str, str]) -> dict[str, list[str]]:
    """Each sensor's and schedule's default status and description, from a fresh process loading
    the code location under `environ`."""
    script = (
        "import json\n"
        "from llm_cost_ops_ops.definitions import defs\n"
        "repo = defs.get_repository_def()\n"
        "items = [*repo.sensor_defs, *repo.schedule_defs]\n"
        "print(json.dumps({i.name: [i.default_status.value, i.description or ''] for i in items}))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != OPERATES_VARIABLE} | environ
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, set()), ("", set()), ("dev, staging", {"dev", "staging"}), ("prod,", {"prod"})],
)
def test_the_declaration_is_read_from_one_variable(value, expected):
    environ = {} if value is None else {OPERATES_VARIABLE: value}
    assert load_operator(ENVIRONMENTS, environ).environments == expected


def test_an_unknown_environment_in_the_declaration_fails_in_one_line():
    with pytest.raises(ConfigError) as error:
        load_operator(ENVIRONMENTS, {OPERATES_VARIABLE: "dev,prdo"})
    assert str(error.value) == (
        "LLM_COST_OPS_OPS_OPERATES: unknown environment 'prdo' (environments.yaml has dev, staging, prod)"
    )


def test_the_local_instance_operates_nothing():
    from llm_cost_ops_ops.definitions import defs

    assert OPERATES_VARIABLE not in os.environ
    repo = defs.get_repository_def()
    sensors = {s.name: s for s in repo.sensor_defs}
    schedules = {s.name: s for s in repo.schedule_defs}
    for env in ENVIRONMENTS:
        writers = [sensors[f"rollout_health_{env}"], *(schedules[f"{n}_{env}"] for n in WRITING_SCHEDULES)]
        if f"drift_self_heal_{env}" in sensors:
            writers.append(sensors[f"drift_self_heal_{env}"])
        for automation in writers:
            assert automation.default_status.value == "STOPPED", automation.name
            assert f"not the operator of {env}" in (automation.description or ""), automation.name
            assert OPERATES_VARIABLE in (automation.description or "")
    # Enabled in schedules/backups.yaml, off here all the same.
    assert "nightly_backup_prod" in schedules
    # Read-only: the drift check keeps the status schedules/drift.yaml gives it.
    assert schedules["hourly_drift_check_prod"].default_status == dg.DefaultScheduleStatus.RUNNING


def test_declared_the_operator_of_staging_turns_on_staging_only():
    statuses = _statuses({OPERATES_VARIABLE: "staging"})

    assert statuses["rollout_health_staging"][0] == "RUNNING"
    assert statuses["nightly_backup_staging"][0] == "RUNNING"
    assert statuses["weekly_restore_drill_staging"][0] == "RUNNING"
    assert "not the operator" not in statuses["rollout_health_staging"][1]
    for env in ("dev", "prod"):
        assert statuses[f"rollout_health_{env}"][0] == "STOPPED"
        assert statuses[f"weekly_restore_drill_{env}"][0] == "STOPPED"
    # Declared, but dev's file leaves its backup off: the declaration never turns a schedule on
    # that its file turns off.
    assert statuses["nightly_backup_dev"][0] == "STOPPED"


def test_sensors_are_off_unless_declared(env_specs):
    from llm_cost_ops_ops.operator_declaration import OperatorDeclaration

    spec = env_specs["prod"]
    (off,) = sensor_definitions(spec).sensors
    (on,) = sensor_definitions(spec, operator=OperatorDeclaration(frozenset({"prod"}))).sensors

    assert off.default_status == dg.DefaultSensorStatus.STOPPED
    assert on.default_status == dg.DefaultSensorStatus.RUNNING


def test_a_schedule_of_an_unknown_operation_counts_as_writing():
    spec = ScheduleSpec(
        name="nightly_x", job="backup_dev", cron="0 2 * * *", environment="dev", enabled=True, source="s:1"
    )
    operator = load_operator(ENVIRONMENTS, {OPERATES_VARIABLE: "dev"})

    (unknown,) = schedule_definitions([spec], {"backup_dev": "dev"}, ENVIRONMENTS)
    (declared,) = schedule_definitions(
        [spec],
        {"backup_dev": "dev"},
        ENVIRONMENTS,
        job_operations={"backup_dev": "backup"},
        operator=operator,
    )

    assert unknown.default_status == dg.DefaultScheduleStatus.STOPPED
    assert declared.default_status == dg.DefaultScheduleStatus.RUNNING


def test_make_dev_says_first_what_this_instance_operates():
    recipe = subprocess.run(
        ["make", "-n", "dev"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    declaration = next(i for i, line in enumerate(recipe) if "operator_declaration" in line)
    # `llm-cost-ops-ops dev` is the launcher that runs `dagster dev` (and stops it cleanly).
    assert declaration < next(i for i, line in enumerate(recipe) if "llm-cost-ops-ops dev" in line)

    env = {k: v for k, v in os.environ.items() if k != OPERATES_VARIABLE}
    printed = subprocess.run(
        [sys.executable, "-m", "llm_cost_ops_ops.operator_declaration"],
        cwd=ROOT, env=env, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert printed.startswith(
        "this Dagster instance operates no environment (LLM_COST_OPS_OPS_OPERATES is unset)"
    )

    wrong = subprocess.run(
        [sys.executable, "-m", "llm_cost_ops_ops.operator_declaration"],
        cwd=ROOT, env={**env, OPERATES_VARIABLE: "qa"}, capture_output=True, text=True,
    )  # fmt: skip
    assert wrong.returncode == 1
    assert wrong.stderr.strip() == (
        "error: LLM_COST_OPS_OPS_OPERATES: unknown environment 'qa' (environments.yaml has dev, staging, prod)"
    )
