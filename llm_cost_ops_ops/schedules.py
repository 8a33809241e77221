"""Schedules as data: `schedules/*.yaml` files, each a list of schedules with their source line.

A schedule names its target job, cron, timezone, environment and whether it runs by default. Bad
input fails definitions loading with `<file>:<line>: schedules[i].<field>: <problem>`.
"""

from __future__ import annotations

import zoneinfo
from pathlib import Path
from typing import Any, Literal

import pydantic
import yaml

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
    text = path.read_text()
    try:
        node = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}{line}: invalid YAML: {getattr(exc, 'problem', exc)}") from None
    if not isinstance(data, dict) or not isinstance(data.get("schedules"), list):
        raise ConfigError(f"{path}:1: expected a mapping with a `schedules:` list")
    assert node is not None  # a mapping was loaded from the same text
    list_node = next(v for k, v in node.value if k.value == "schedules")
    return [
        (item.start_mark.line + 1, entry)
        for item, entry in zip(list_node.value, data["schedules"], strict=True)
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
