"""Schedules as data: `schedules/*.yaml` files, each a list of schedules with their source line.

A schedule names its target job, cron, timezone, environment and whether it runs by default. Bad
input fails definitions loading with `<file>:<line>: schedules[i].<field>: <problem>`.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Collection, Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

import pydantic

from .config_yaml import line_of, read_yaml_tree
from .errors import ConfigError
from .paths import project_root


class ScheduleSpec(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid", frozen=True)

    name: str = pydantic.Field(pattern=r"^[A-Za-z0-9_]+$")
    job: str
    cron: str
    timezone: str = "UTC"
    environment: str
    enabled: bool = False
    description: str = ""
    run_config: str | None = None  # a jobs/<operation>/<env>.yaml file, relative to the project
    partition: Literal["none", "daily"] = "none"  # daily: the run targets the tick's date partition
    source: str = ""  # <file>:<line>, filled by the loader

    @pydantic.field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown timezone {value!r}") from None
        return value

    @pydantic.field_validator("cron")
    @classmethod
    def _five_fields(cls, value: str) -> str:
        if len(value.split()) != 5:
            raise ValueError(f"cron {value!r} must have 5 fields (minute hour day month weekday)")
        return value


def _entries(path: Path) -> list[tuple[int, Any]]:
    """The schedule entries with their 1-based line, from the YAML node tree."""
    data, tree = read_yaml_tree(path)
    if not isinstance(data, dict) or not isinstance(data.get("schedules"), list):
        raise ConfigError(f"{path}:1: expected a mapping with a `schedules:` list")
    return [
        (line_of(tree, ("schedules", index)) or 1, entry) for index, entry in enumerate(data["schedules"])
    ]


def load_schedules(directory: Path | None = None) -> list[ScheduleSpec]:
    """Every schedule in `schedules/*.yaml`. Raises ConfigError naming file, line and field."""
    directory = directory or project_root() / "schedules"
    specs: list[ScheduleSpec] = []
    seen: dict[str, str] = {}
    for path in sorted(directory.glob("*.yaml")):
        for index, (line, entry) in enumerate(_entries(path)):
            source = f"{path}:{line}"
            try:
                spec = ScheduleSpec.model_validate({**(entry or {}), "source": source})
            except pydantic.ValidationError as exc:
                first = exc.errors()[0]
                field = ".".join(str(p) for p in first["loc"])
                raise ConfigError(f"{source}: schedules[{index}].{field}: {first['msg']}") from None
            if spec.name in seen:
                raise ConfigError(f"{source}: schedule {spec.name!r} is already defined at {seen[spec.name]}")
            seen[spec.name] = source
            specs.append(spec)
    return specs


def run_config_job(run_config: str) -> str | None:
    """The job a run-config file is for, by the layout `jobs/<operation>/<env>[.<variant>].yaml`
    (job `<operation>_<env>`) or `jobs/<operation>/all.yaml` (job `<operation>`); None elsewhere."""
    parts = Path(run_config).parts
    if len(parts) != 3 or parts[0] != "jobs" or not parts[2].endswith((".yaml", ".yml")):
        return None
    operation, environment = parts[1], parts[2].split(".")[0]
    return operation if environment == "all" else f"{operation}_{environment}"


def check_targets(
    specs: Iterable[ScheduleSpec], job_environments: Mapping[str, str | None], environments: Collection[str]
) -> None:
    """Hold each schedule to what it targets: a known job and environment, the job's own environment
    (a job that spans every environment takes any), and a run-config file made for that job.

    Raises ConfigError `<file>:<line>: schedule <name>: <problem>`.
    """
    for spec in specs:
        where = f"{spec.source}: schedule {spec.name}"
        if spec.job not in job_environments:
            raise ConfigError(f"{where}: unknown target job {spec.job!r}")
        if spec.environment not in environments:
            known = ", ".join(environments)
            raise ConfigError(f"{where}: unknown environment {spec.environment!r} (environments: {known})")
        job_environment = job_environments[spec.job]
        if job_environment is not None and job_environment != spec.environment:
            raise ConfigError(
                f"{where}: environment {spec.environment!r} disagrees with job {spec.job}, "
                f"which runs in {job_environment!r}"
            )
        if spec.run_config is not None:
            owner = run_config_job(spec.run_config)
            if owner != spec.job:
                made_for = f"job {owner}" if owner else "no job (expected jobs/<operation>/<env>.yaml)"
                raise ConfigError(f"{where}: run_config {spec.run_config} is for {made_for}, not {spec.job}")
