"""Schedules as data.

Cases: a valid file loads with each schedule's file:line; an invalid cron (wrong field count, and a
value Dagster rejects), an unknown timezone, an unknown field, a duplicate name, invalid YAML and an
unknown target job each fail with one line naming the file and line; enabled maps to the default
status; the run-config file is loaded into the schedule.
Issue 17: a key given twice in one schedule, an environment that names no environment, an environment
that is not the job's, and a run-config file made for another job (or outside jobs/) each fail when
definitions load, naming file and line; the real schedules/ agree with the real jobs.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from llm_cost_ops_ops.defs.schedules import schedule_definitions
from llm_cost_ops_ops.errors import ConfigError
from llm_cost_ops_ops.schedules import load_schedules

pytestmark = pytest.mark.unit

VALID = """\
schedules:
  - name: nightly_render
    job: render_and_check
    cron: "0 2 * * *"
    environment: prod
    enabled: true
    run_config: jobs/render_and_check/all.yaml

  - name: weekly_render_dev
    job: render_and_check_dev
    cron: "0 3 * * 0"
    timezone: Europe/Berlin
    environment: dev
"""


JOBS = {
    "render_and_check": None,
    "render_and_check_dev": "dev",
    "backup_dev": "dev",
    "drift_check_prod": "prod",
}
ENVIRONMENTS = ("dev", "staging", "prod")


def _write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "s.yaml").write_text(text)
    return tmp_path


def test_valid_file_loads_with_sources(tmp_path):
    specs = load_schedules(_write(tmp_path, VALID))
    assert [s.name for s in specs] == ["nightly_render", "weekly_render_dev"]
    assert specs[0].source.endswith("s.yaml:2") and specs[1].source.endswith("s.yaml:9")
    built = schedule_definitions(specs, JOBS, ENVIRONMENTS, job_operations={"render_and_check": "render"})
    assert built[0].default_status == dg.DefaultScheduleStatus.RUNNING
    assert built[1].default_status == dg.DefaultScheduleStatus.STOPPED
    assert built[1].execution_timezone == "Europe/Berlin"
    assert built[0].tags["env"] == "prod"


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (('cron: "0 3 * * 0"', 'cron: "0 3 * *"'), "s.yaml:9: schedules[1].cron: Value error, cron '0 3 * *' must have 5 fields"),
        (("timezone: Europe/Berlin", "timezone: Mars/Olympus"), "s.yaml:9: schedules[1].timezone: Value error, unknown timezone"),
        (("    environment: dev", "    environment: dev\n    colour: blue"), "s.yaml:9: schedules[1].colour: Extra inputs are not permitted"),
        (("name: weekly_render_dev", "name: nightly_render"), "s.yaml:9: schedule 'nightly_render' is already defined at"),
        (("schedules:", "schedules: ["), "s.yaml:"),
        (("    environment: dev", "    environment: dev\n    cron: \"0 4 * * 0\""), "s.yaml:14: duplicate key 'cron' (first given at line 11)"),
    ],
)  # fmt: skip
def test_bad_input_names_file_and_line(tmp_path, change, expected):
    with pytest.raises(ConfigError) as raised:
        load_schedules(_write(tmp_path, VALID.replace(*change)))
    assert expected in str(raised.value)
    assert "\n" not in str(raised.value)


def test_cron_dagster_rejects_names_file_and_line(tmp_path):
    specs = load_schedules(_write(tmp_path, VALID.replace('"0 2 * * *"', '"61 2 * * *"')))
    with pytest.raises(ConfigError, match=r"s\.yaml:2: schedule nightly_render: Found invalid cron schedule"):
        schedule_definitions(specs, JOBS, ENVIRONMENTS)


def test_unknown_target_job_names_file_and_line(tmp_path):
    specs = load_schedules(_write(tmp_path, VALID))
    with pytest.raises(ConfigError, match=r"s\.yaml:9: schedule weekly_render_dev: unknown target job"):
        schedule_definitions(specs, {"render_and_check": None}, ENVIRONMENTS)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (("environment: dev", "environment: prdo"), "s.yaml:9: schedule weekly_render_dev: unknown environment 'prdo'"),
        (("environment: dev", "environment: prod"), "s.yaml:9: schedule weekly_render_dev: environment 'prod' disagrees with job render_and_check_dev, which runs in 'dev'"),
        (("    environment: dev", "    environment: dev\n    run_config: jobs/render_and_check/prod.yaml"), "s.yaml:9: schedule weekly_render_dev: run_config jobs/render_and_check/prod.yaml is for job render_and_check_prod, not render_and_check_dev"),
        (("run_config: jobs/render_and_check/all.yaml", "run_config: environments.yaml"), "s.yaml:2: schedule nightly_render: run_config environments.yaml is for no job"),
    ],
)  # fmt: skip
def test_schedule_must_agree_with_its_job(tmp_path, change, expected):
    specs = load_schedules(_write(tmp_path, VALID.replace(*change)))
    with pytest.raises(ConfigError) as raised:
        schedule_definitions(specs, JOBS, ENVIRONMENTS)
    assert expected in str(raised.value)


def test_drift_schedule_with_a_teardown_run_config_is_refused(tmp_path):
    text = """\
schedules:
  - name: hourly_drift_check_prod
    job: drift_check_prod
    cron: "0 * * * *"
    environment: prod
    run_config: jobs/teardown/prod.yaml
"""
    specs = load_schedules(_write(tmp_path, text))
    with pytest.raises(ConfigError, match=r"s\.yaml:2: .*is for job teardown_prod, not drift_check_prod"):
        schedule_definitions(specs, JOBS, ENVIRONMENTS)


def test_backup_schedule_in_another_environment_is_refused(tmp_path):
    text = """\
schedules:
  - name: nightly_backup
    job: backup_dev
    cron: "0 2 * * *"
    environment: prod
"""
    specs = load_schedules(_write(tmp_path, text))
    with pytest.raises(ConfigError, match=r"s\.yaml:2: .*'prod' disagrees with job backup_dev"):
        schedule_definitions(specs, JOBS, ENVIRONMENTS)


def test_run_config_with_a_key_twice_is_refused(tmp_path, monkeypatch):
    config = tmp_path / "jobs" / "render_and_check" / "all.yaml"
    config.parent.mkdir(parents=True)
    config.write_text("ops:\n  a: {}\nops:\n  b: {}\n")
    monkeypatch.setenv("LLM_COST_OPS_OPS_ROOT", str(tmp_path))
    specs = load_schedules(_write(tmp_path, VALID))
    with pytest.raises(ConfigError, match=r"all\.yaml:3: duplicate key 'ops' \(first given at line 1\)"):
        schedule_definitions(specs, JOBS, ENVIRONMENTS)


def test_real_schedules_agree_with_the_real_jobs(project_root):
    from llm_cost_ops_ops.definitions import defs

    names = {s.name for s in defs.get_repository_def().schedule_defs}
    assert {spec.name for spec in load_schedules(project_root / "schedules")} == names
