"""Schedule definitions built from `schedules/*.yaml`."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

import dagster as dg

from ..config_yaml import read_yaml
from ..errors import ConfigError
from ..paths import project_root
from ..schedules import ScheduleSpec, check_targets


def schedule_definitions(
    specs: Sequence[ScheduleSpec], job_environments: Mapping[str, str | None], environments: Collection[str]
) -> list[dg.ScheduleDefinition]:
    """One ScheduleDefinition per spec; `job_environments` maps each job to the environment it runs
    in (None: every environment).

    Raises ConfigError naming file and line for an unknown target job or environment, an
    environment that is not the job's, a run-config file that is missing, invalid or made for
    another job, or a cron Dagster rejects."""
    check_targets(specs, job_environments, environments)
    schedules = []
    for spec in specs:
        run_config: dict = {}
        if spec.run_config:
            path = project_root() / spec.run_config
            if not path.is_file():
                raise ConfigError(
                    f"{spec.source}: schedule {spec.name}: run_config {spec.run_config} not found"
                )
            loaded = read_yaml(path) or {}
            if not isinstance(loaded, dict):
                raise ConfigError(f"{path}:1: a run config must be a mapping (schedule {spec.name})")
            run_config = loaded
        try:
            schedules.append(_schedule(spec, run_config))
        except dg.DagsterInvalidDefinitionError as exc:
            raise ConfigError(f"{spec.source}: schedule {spec.name}: {str(exc).splitlines()[0]}") from None
    return schedules


def _schedule(spec: ScheduleSpec, run_config: dict) -> dg.ScheduleDefinition:
    status = dg.DefaultScheduleStatus.RUNNING if spec.enabled else dg.DefaultScheduleStatus.STOPPED
    tags = {"env": spec.environment, "schedule": spec.name}
    if spec.partition == "none":
        return dg.ScheduleDefinition(
            name=spec.name,
            cron_schedule=spec.cron,
            job_name=spec.job,
            execution_timezone=spec.timezone,
            run_config=run_config,
            tags=tags,
            description=spec.description or None,
            default_status=status,
        )

    @dg.schedule(
        name=spec.name,
        cron_schedule=spec.cron,
        job_name=spec.job,
        execution_timezone=spec.timezone,
        description=spec.description or None,
        default_status=status,
    )
    def _daily(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
        moment = context.scheduled_execution_time
        return dg.RunRequest(partition_key=moment.strftime("%Y-%m-%d"), run_config=run_config, tags=tags)

    return _daily
