"""Run-config overrides of a deploy, rollback and teardown (defs/deploy.py, defs/teardown.py).

Cases:
- the rollout deadline override moves only the workload waits, the database wait keeps the
  environment's deadline; the database override moves only the database wait
- without overrides every timing is the environment's; an override is taken as given (explicit
  None checks, not `or`)
- zero or negative overrides are refused by the config class, naming the field; through Dagster a
  deploy_dev run with `rollout_deadline_seconds: 0` fails on that one error
"""

from __future__ import annotations

import dagster as dg
import pydantic
import pytest
import yaml

from llm_cost_ops_ops import definitions
from llm_cost_ops_ops.defs.deploy import DeployConfig, RollbackConfig, _options
from llm_cost_ops_ops.defs.teardown import TeardownConfig

pytestmark = pytest.mark.dagster


def test_rollout_override_leaves_the_database_wait_alone(env_specs):
    spec = env_specs["dev"]
    options = _options(spec, DeployConfig(rollout_deadline_seconds=5), dry_run=False)
    assert options.rollout.deadline_seconds == 5
    assert options.database.deadline_seconds == spec.deploy.database_deadline_seconds
    assert spec.deploy.database_deadline_seconds != 5


def test_database_override_leaves_the_rollout_wait_alone(env_specs):
    spec = env_specs["dev"]
    options = _options(spec, RollbackConfig(database_deadline_seconds=7, poll_seconds=0.5), dry_run=False)
    assert options.database.deadline_seconds == 7
    assert options.rollout.deadline_seconds == spec.deploy.rollout_deadline_seconds
    assert options.rollout.poll_seconds == options.database.poll_seconds == 0.5


def test_no_override_is_the_environments_timing(env_specs):
    spec = env_specs["prod"]
    options = _options(spec, DeployConfig(), dry_run=True)
    assert (options.rollout.deadline_seconds, options.rollout.poll_seconds) == (
        spec.deploy.rollout_deadline_seconds,
        spec.deploy.poll_seconds,
    )
    assert options.database.deadline_seconds == spec.deploy.database_deadline_seconds


@pytest.mark.parametrize(
    ("config_class", "field"),
    [
        (DeployConfig, "rollout_deadline_seconds"),
        (DeployConfig, "database_deadline_seconds"),
        (DeployConfig, "poll_seconds"),
        (RollbackConfig, "rollout_deadline_seconds"),
        (RollbackConfig, "poll_seconds"),
        (TeardownConfig, "deadline_seconds"),
    ],
)
@pytest.mark.parametrize("value", [0, -1])
def test_a_non_positive_override_is_refused(config_class, field, value):
    with pytest.raises(pydantic.ValidationError, match=rf"{field}\n  Input should be greater than 0"):
        config_class(**{field: value})


def test_a_deploy_with_a_zero_deadline_fails_on_that_field(project_root):
    run_config = yaml.safe_load((project_root / "jobs/deploy/dev.plan.yaml").read_text())
    [step] = run_config["ops"]  # the deploy asset's step, as the shipped plan config names it
    run_config["ops"][step]["config"]["rollout_deadline_seconds"] = 0
    job = definitions.defs.resolve_job_def("deploy_dev")
    result = job.execute_in_process(run_config=run_config, raise_on_error=False)
    assert not result.success
    failures = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
    assert [e.step_key for e in failures] == [step]
    message = failures[0].event_specific_data.error.message
    assert "DeployConfig\nrollout_deadline_seconds\n  Input should be greater than 0" in message
