"""Schedule definitions built from `schedules/*.yaml`."""

from __future__ import annotations

from collections.abc import Iterable

import dagster as dg
import yaml

from ..errors import ConfigError
from ..paths import project_root
from ..schedules import ScheduleSpec


def schedule_definitions(specs: Iterable[ScheduleSpec], job_names: set[str]) -> list[dg.ScheduleDefinition]:
    """One ScheduleDefinition per spec. Raises ConfigError naming file and line for an unknown
    target job, an unknown environment tag, a missing run-config file or a cron Dagster rejects."""
    schedules = []
    for spec in specs:
        if spec.job not in job_names:
            raise ConfigError(f"{spec.source}: schedule {spec.name}: unknown target job {spec.job!r}")
        run_config: dict = {}
        if spec.run_config:
            path = project_root() / spec.run_config
            if not path.is_file():
                raise ConfigError(
                    f"{spec.source}: schedule {spec.name}: run_config {spec.run_config} not found"
                )
            run_config = yaml.safe_load(path.read_text()) or {}
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
