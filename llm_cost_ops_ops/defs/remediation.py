"""The remediation path shared by the rollout sensor and drift self-heal: the sensor's cursor, the
facts it reads from the Dagster instance, and turning a decision into a run request or an alert.

One failure key leads to one remediation: the key is the RunRequest's run_key (Dagster skips a key
it has already launched), it is remembered in the cursor, and it is a run tag, so a reset cursor
still finds the run that handled it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import dagster as dg

from ..notify.message import Notice, summarize
from ..notify.sender import NotificationFailed
from ..remediation import Decision
from .keys import ENV_LOCK_TAG, REASON_TAG, REMEDIATION_KEY_TAG, REMEDIATION_TAG
from .notify import NotifierResource

RETAIN_SECONDS = 7 * 24 * 3600
UNFINISHED = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
]


@dataclass
class SensorState:
    """The cursor: conditions being timed, and the keys already handled by a run or an alert."""

    since: dict[str, float] = field(default_factory=dict)
    runs: dict[str, float] = field(default_factory=dict)
    alerts: dict[str, float] = field(default_factory=dict)

    @classmethod
    def load(cls, cursor: str | None) -> SensorState:
        try:
            raw = json.loads(cursor or "{}")
            return cls(dict(raw.get("since", {})), dict(raw.get("runs", {})), dict(raw.get("alerts", {})))
        except (ValueError, TypeError, AttributeError):
            return cls()  # an unreadable cursor is a reset one: the run tags still dedupe

    def dump(self, now: float) -> str:
        keep = now - RETAIN_SECONDS
        return json.dumps(
            {
                "since": self.since,
                "runs": {k: t for k, t in self.runs.items() if t >= keep},
                "alerts": {k: t for k, t in self.alerts.items() if t >= keep},
            },
            sort_keys=True,
        )


def operation_in_progress(instance: dg.DagsterInstance, environment: str) -> dg.DagsterRun | None:
    """A queued or running deploy, rollback or migration of the environment (they carry the env-lock tag)."""
    runs = instance.get_runs(
        filters=dg.RunsFilter(tags={ENV_LOCK_TAG: environment}, statuses=UNFINISHED), limit=1
    )
    return runs[0] if runs else None


def handled_by(instance: dg.DagsterInstance, state: SensorState, key: str) -> str | None:
    if key in state.runs:
        return "an earlier run request of this sensor"
    if key in state.alerts:
        return "an earlier alert of this sensor"
    runs = instance.get_runs(filters=dg.RunsFilter(tags={REMEDIATION_KEY_TAG: key}), limit=1)
    return f"run {runs[0].run_id}" if runs else None


def recent_remediations(
    instance: dg.DagsterInstance, state: SensorState, environment: str, now: float
) -> int:
    """Distinct remediation keys of the environment in the last hour: runs in the instance, and the
    ones this sensor requested that the daemon may not have launched yet."""
    hour_ago = now - 3600
    runs = instance.get_runs(
        filters=dg.RunsFilter(
            tags={REMEDIATION_TAG: environment}, created_after=datetime.fromtimestamp(hour_ago, UTC)
        )
    )
    keys = {run.tags.get(REMEDIATION_KEY_TAG, run.run_id) for run in runs}
    keys |= {k for k, t in state.runs.items() if t >= hour_ago and k.startswith(f"{environment}:")}
    return len(keys)


def run_request(decision: Decision, environment: str, key: str, reason: str) -> dg.RunRequest:
    assert decision.job is not None
    return dg.RunRequest(
        run_key=key,
        job_name=decision.job,
        tags={REMEDIATION_TAG: environment, REMEDIATION_KEY_TAG: key, REASON_TAG: reason[:200]},
    )


def alert(notifier: NotifierResource, environment: str, title: str, summary: str, log: Any) -> None:
    """Send an alert; a delivery failure is logged, never raised (the tick must finish)."""
    notice = Notice(title, environment, summarize(summary, notifier.secrets()), kind="rollout-alert")
    try:
        notifier.send(notice)
    except NotificationFailed as exc:
        log.warning(f"{environment}: alert not delivered: {exc}")
