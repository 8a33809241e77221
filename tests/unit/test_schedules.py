"""Schedules as data.

Cases: a valid file loads with each schedule's file:line; an invalid cron (wrong field count, and a
value Dagster rejects), an unknown timezone, an unknown field, a duplicate name, invalid YAML and an
unknown target job each fail with one line naming the file and line; enabled maps to the default
status; the run-config file is loaded into the schedule.
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


def _write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "s.yaml").write_text(text)
    return tmp_path


def test_valid_file_loads_with_sources(tmp_path):
    specs = load_schedules(_write(tmp_path, VALID))
    assert [s.name for s in specs] == ["nightly_render", "weekly_render_dev"]
    assert specs[0].source.endswith("s.yaml:2") and specs[1].source.endswith("s.yaml:9")
    built = schedule_definitions(specs, {"render_and_check", "render_and_check_dev"})
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
        schedule_definitions(specs, {"render_and_check", "render_and_check_dev"})


def test_unknown_target_job_names_file_and_line(tmp_path):
    specs = load_schedules(_write(tmp_path, VALID))
    with pytest.raises(ConfigError, match=r"s\.yaml:9: schedule weekly_render_dev: unknown target job"):
        schedule_definitions(specs, {"render_and_check"})
