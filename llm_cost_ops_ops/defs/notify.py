"""Notifications: the notifier resource, and a run-failure sensor for the operations that change an
environment (deploy, rollback, migrate, backup, restore and restore drills)."""

# No `from __future__ import annotations`: Dagster reads context and resource annotations.

import re
from typing import Any

import dagster as dg
from pydantic import Field

from ..environments import EnvironmentSpec
from ..notify.message import Notice, summarize
from ..notify.sender import Destination, Notifier
from ..redaction import environment_secrets

NOTIFIED_OPERATIONS = ("deploy", "rollback", "migrate", "backup", "restore", "restore_drill")


class NotifierResource(dg.ConfigurableResource):
    """Where notifications go. Webhook URLs are secrets: set them with dg.EnvVar."""

    webhook_url: str = Field(default="", description="Generic JSON webhook (POST).")
    slack_webhook_url: str = Field(default="", description="Slack incoming-webhook URL.")
    dagster_url: str = Field(default="http://127.0.0.1:3000", description="The Dagster UI, for run links.")
    timeout_seconds: float = Field(default=5.0, gt=0)
    max_attempts: int = Field(default=4, ge=1, description="Attempts per destination (transient errors).")
    backoff_initial_seconds: float = Field(default=0.5, ge=0)

    def secrets(self) -> list[str]:
        """Values no message may contain: the webhook URLs and secret-named environment variables."""
        return [self.webhook_url, self.slack_webhook_url, *environment_secrets()]

    def run_link(self, run_id: str) -> str:
        return f"{self.dagster_url.rstrip('/')}/runs/{run_id}" if run_id else ""

    def send(self, notice: Notice) -> int:
        """Deliver to every configured destination; 0 when none is. Raises NotificationFailed."""
        destinations = [
            Destination(self.webhook_url, "webhook"),
            Destination(self.slack_webhook_url, "slack"),
        ]
        notifier = Notifier(
            destinations,
            timeout_seconds=self.timeout_seconds,
            max_attempts=self.max_attempts,
            backoff_initial=self.backoff_initial_seconds,
        )
        try:
            return notifier.send(notice)
        finally:
            notifier.close()


def _own_message(error: Any) -> str:
    """The message of the exception the op raised: the project's own one-line cause.

    Dagster wraps the op's exception in its own errors (skipped here); what the op's exception was
    raised from (a psycopg or botocore error, say) is an inner library's text, not what a person
    acts on, and may quote what the project's message masked.
    """

    def wrapper(e: Any) -> bool:  # Dagster's own errors, and the Failure a step raises from ours
        name = getattr(e, "cls_name", "")
        return name.startswith("Dagster") or name == "Failure"

    while wrapper(error) and getattr(error, "cause", None) is not None:
        error = error.cause
    return str(getattr(error, "message", "") or "")


def failure_notice(
    context: dg.RunFailureSensorContext, notifier: NotifierResource, environment: str
) -> Notice:
    run = context.dagster_run
    steps = context.get_step_failure_events()
    step = (steps[0].step_key or "") if steps else ""
    error = steps[0].event_specific_data.error if steps else None  # type: ignore[union-attr]
    message = _own_message(error) if error is not None else str(context.failure_event.message or "")
    more = f" (and {len(steps) - 1} more failed step(s))" if len(steps) > 1 else ""
    return Notice(
        title=f"{run.job_name} failed",
        environment=environment,
        summary=summarize(message, notifier.secrets()) + more,
        job=run.job_name,
        step=step,
        run_id=run.run_id,
        link=notifier.run_link(run.run_id),
    )


def notification_definitions(specs: dict[str, EnvironmentSpec]) -> dg.Definitions:
    """One run-failure sensor for every environment's deploy, rollback, migrate, backup, restore and
    restore-drill jobs."""
    operations = "|".join(sorted(NOTIFIED_OPERATIONS, key=len, reverse=True))
    pattern = re.compile(rf"^(?:{operations})_({'|'.join(map(re.escape, specs))})$")

    @dg.run_failure_sensor(
        name="notify_run_failures",
        minimum_interval_seconds=30,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Sends a webhook / Slack message when a deploy, rollback, migrate, backup, restore or "
        "restore-drill run fails: environment, job, failing step, error summary and a link to the run.",
    )
    def notify_run_failures(context: dg.RunFailureSensorContext, notifier: NotifierResource):
        match = pattern.match(context.dagster_run.job_name)
        if match is None:
            return
        environment = context.dagster_run.tags.get("env") or match.group(1)
        delivered = notifier.send(failure_notice(context, notifier, environment))
        context.log.info(f"{context.dagster_run.job_name} failure sent to {delivered} destination(s)")

    return dg.Definitions(sensors=[notify_run_failures])
