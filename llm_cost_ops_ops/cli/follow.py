"""Following a submitted run in the instance until it ends: its status changes and steps (or, with
verbosity, the whole Dagster event log), redacted."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime

import dagster as dg

from ..defs.keys import ENV_LOCK_TAG
from ..redaction import redact

IN_PROGRESS = [dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING]
_STEP_EVENTS = {
    dg.DagsterEventType.STEP_START: "started",
    dg.DagsterEventType.STEP_SUCCESS: "done",
    dg.DagsterEventType.STEP_FAILURE: "FAILED",
    dg.DagsterEventType.STEP_SKIPPED: "skipped",
}


def queue_holders(instance: dg.DagsterInstance, run: dg.DagsterRun) -> list[str]:
    """The runs holding the env-lock `run` waits for."""
    value = run.tags.get(ENV_LOCK_TAG)
    if not value:
        return []
    others = instance.get_runs(filters=dg.RunsFilter(tags={ENV_LOCK_TAG: value}, statuses=IN_PROGRESS))
    return [f"{other.job_name} {other.run_id}" for other in others if other.run_id != run.run_id]


class RunFollower:
    """Polls one run; `poll()` prints what is new and returns the run."""

    def __init__(
        self, instance: dg.DagsterInstance, run_id: str, *, verbose: bool, out: Callable[[str], None]
    ):
        self.instance = instance
        self.run_id = run_id
        self.verbose = verbose
        self.out = out
        self._cursor: str | None = None
        self._status: dg.DagsterRunStatus | None = None
        self._queued_since = time.monotonic()
        self._told_holders = False

    def _events(self) -> None:
        while True:
            connection = self.instance.get_records_for_run(self.run_id, cursor=self._cursor, limit=500)
            self._cursor = connection.cursor
            for record in connection.records:
                self._show(record.event_log_entry)
            if not connection.has_more:
                return

    def _show(self, entry) -> None:
        event = entry.dagster_event
        if self.verbose:
            at = datetime.fromtimestamp(entry.timestamp).strftime("%H:%M:%S")
            kind = event.event_type.name if event else "LOG"
            step = f" {entry.step_key}" if entry.step_key else ""
            self.out(redact(f"{at} {kind}{step} - {entry.message}"))
        elif event is not None and event.event_type in _STEP_EVENTS:
            self.out(f"  step {event.step_key}: {_STEP_EVENTS[event.event_type]}")

    def poll(self) -> dg.DagsterRun:
        run = self.instance.get_run_by_id(self.run_id)
        assert run is not None, self.run_id
        if run.status != self._status:
            self._status = run.status
            if run.status == dg.DagsterRunStatus.QUEUED:
                self._queued_since = time.monotonic()
                self.out("queued")
            elif run.status in (dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED):
                self.out(run.status.value.lower())
        self._events()
        if (
            run.status == dg.DagsterRunStatus.QUEUED
            and not self._told_holders
            and time.monotonic() - self._queued_since > 10
        ):
            holders = queue_holders(self.instance, run)
            if holders:
                self._told_holders = True
                self.out(
                    f"still queued: {ENV_LOCK_TAG}={run.tags[ENV_LOCK_TAG]} is held by {', '.join(holders)}"
                )
        return run
