"""Schedule definitions built from `schedules/*.yaml`."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

import dagster as dg

from ..config_yaml import read_yaml
from ..errors import ConfigError
from ..operator_declaration import NOBODY, OperatorDeclaration
from ..paths import project_root
from ..schedules import ScheduleSpec, check_targets
from .automation import schedule_status


def schedule_definitions(
    specs: Sequence[ScheduleSpec],
    job_environments: Mapping[str, str | None],
    environments: Collection[str],
    *,
    job_operations: Mapping[str, str | None] | None = None,
    operator: OperatorDeclaration = NOBODY,
) -> list[dg.ScheduleDefinition]:
    """One ScheduleDefinition per spec; `job_environments` maps each job to the environment it runs
    in (None: every environment), `job_operations` to its `operation` tag. A schedule whose job
    writes (or whose operation is unknown) is off unless `operator` operates its environment.

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
        operation = (job_operations or {}).get(spec.job)
        status, description = schedule_status(
            operator, spec.environment, operation, spec.enabled, spec.description
        )
        try:
            schedules.append(_schedule(spec, run_config, status, description))
        except dg.DagsterInvalidDefinitionError as exc:
            raise ConfigError(f"{spec.source}: schedule {spec.name}: {str(exc).splitlines()[0]}") from None
    return schedules


def _schedule(
    spec: ScheduleSpec, run_config: dict, status: dg.DefaultScheduleStatus, description: str
) -> dg.ScheduleDefinition:
    tags = {"env": spec.environment, "schedule": spec.name}
    if spec.partition == "none":
        return dg.ScheduleDefinition(
            name=spec.name,
            cron_schedule=spec.cron,
            job_name=spec.job,
            execution_timezone=spec.timezone,
            run_config=run_config,
            tags=tags,
            description=description or None,
            default_status=status,
        )

    @dg.schedule(
        name=spec.name,
        cron_schedule=spec.cron,
        job_name=spec.job,
        execution_timezone=spec.timezone,
        description=description or None,
        default_status=status,
    )
    def _daily(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
        moment = context.scheduled_execution_time
        return dg.RunRequest(partition_key=moment.strftime("%Y-%m-%d"), run_config=run_config, tags=tags)

    return _daily
