"""Whether a sensor or schedule starts on: the operator declaration (llm_cost_ops_ops/
operator_declaration.py) turned into Dagster's default statuses and a description saying why."""

from __future__ import annotations

import dagster as dg

from ..operator_declaration import OperatorDeclaration


def sensor_status(
    operator: OperatorDeclaration, environment: str, description: str
) -> tuple[dg.DefaultSensorStatus, str]:
    """RUNNING where this instance operates `environment`; else STOPPED, the reason in the
    description (a person may still start it in the UI, knowingly)."""
    reason = operator.off_reason(environment, None)
    if reason is None:
        return dg.DefaultSensorStatus.RUNNING, description
    return dg.DefaultSensorStatus.STOPPED, f"{description} [{reason}]"


def schedule_status(
    operator: OperatorDeclaration, environment: str, operation: str | None, enabled: bool, description: str
) -> tuple[dg.DefaultScheduleStatus, str]:
    """The schedule file's `enabled`, unless `operation` writes and this instance does not operate
    `environment`: then STOPPED, the reason in the description."""
    reason = operator.off_reason(environment, operation)
    if reason is not None:
        return dg.DefaultScheduleStatus.STOPPED, f"{description} [{reason}]".strip()
    status = dg.DefaultScheduleStatus.RUNNING if enabled else dg.DefaultScheduleStatus.STOPPED
    return status, description
