"""`llm-cost-ops-ops run`: submit a run to the instance, follow it to its end, print its summary.

1. The run is created in the instance at DAGSTER_HOME for the workspace's code location and its id
   and UI link printed; then it is submitted to the run queue (its tag concurrency limits, the
   per-environment env-lock, apply).
2. The daemon dequeues it and its sensors see it. When no daemon runs for the instance, one is
   started for the duration of the command (and, on a first use, the run-failure notifier is given
   its first tick before the run is submitted, so it sees this run's failure).
3. When the run ends: for a failure, the command waits for the notifier's tick that saw it (when
   this command runs the daemon and a webhook is configured); then the summary, last.
"""

from __future__ import annotations

import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg
from dagster._core.run_coordinator import QueuedRunCoordinator

from .. import process_env
from ..redaction import redact
from . import daemon as daemons
from .follow import RunFollower
from .submit import SubmitError, run_config_from_files, submit_run
from .summary import facts_from_records, summary_lines

WEBHOOK_VARIABLES = ("LLM_COST_OPS_OPS_WEBHOOK_URL", "LLM_COST_OPS_OPS_SLACK_WEBHOOK_URL")
NOTIFIER_FIRST_TICK_SECONDS = 90.0
NOTIFIER_REACTION_SECONDS = 90.0
CANCEL_SECONDS = 20.0


@dataclass
class RunRequest:
    job_name: str
    workspace: Path
    config_files: list[Path] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)
    ui_url: str = "http://127.0.0.1:3000"
    verbose: bool = False
    poll_seconds: float = 0.5


class Interrupted(Exception):
    pass


def _interrupt(signum, frame) -> None:
    raise Interrupted(signal.Signals(signum).name)


def _seconds(instance: dg.DagsterInstance, run_id: str) -> float | None:
    record = instance.get_run_record_by_id(run_id)
    if record is None or record.start_time is None or record.end_time is None:
        return None
    return record.end_time - record.start_time


def _failure_time(instance: dg.DagsterInstance, run_id: str) -> float:
    records = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.RUN_FAILURE).records
    return records[-1].timestamp if records else time.time()


class RunCommand:
    def __init__(self, request: RunRequest, out: Callable[[str], None] | None = None):
        self.request = request
        self.out = out or (lambda line: print(line, flush=True))
        self.own: daemons.OwnDaemon | None = None

    def _ensure_daemon(self, instance: dg.DagsterInstance, why: str) -> None:
        """Start a daemon unless one beats, deciding under the instance's start lock."""
        with daemons.start_lock(instance.root_directory):
            if daemons.daemon_running(instance):
                return
            self.own = daemons.OwnDaemon.start(self.request.workspace, echo=self.request.verbose)
            self.out(f"{why}: started `dagster-daemon run` (pid {self.own.process.pid}) until this run ends")
            if not self.own.wait_for_first_beat(instance):
                self._check_daemon()
                raise SubmitError(
                    "the dagster-daemon this command started never beat; see `dagster-daemon run`"
                )

    def _wait_for_other_runs(self, instance: dg.DagsterInstance, run_id: str) -> None:
        """Keep this command's daemon while it serves other commands' runs: its process group holds
        their run workers, and stopping it would kill them mid-run."""
        if self.own is None:
            return
        said = False
        while others := daemons.active_runs(instance, besides=run_id):
            if not said:
                self.out(
                    f"the daemon this command started also serves {len(others)} other run(s) "
                    f"({', '.join(others[:3])}): it stops when they end"
                )
                said = True
            self._check_daemon()
            time.sleep(self.request.poll_seconds)

    def _stop_daemon(self, instance: dg.DagsterInstance) -> None:
        if self.own is not None:
            self.own.stop()
            self.own.forget_heartbeats(instance)
            self.own = None

    def _check_daemon(self) -> None:
        if self.own is not None and not self.own.alive():
            raise SubmitError(
                f"the dagster-daemon this command started exited ({self.own.process.returncode}):\n"
                + redact(self.own.log_tail())
            )

    def _before_submit(self, instance: dg.DagsterInstance, run: dg.DagsterRun) -> None:
        link = f"{self.request.ui_url.rstrip('/')}/runs/{run.run_id}"
        self.out(f"run {run.run_id} ({run.job_name}): {link}")
        if self.own is None or daemons.notifier_ready(instance):
            return
        if daemons.notifier_stopped(daemons.notifier_state(instance)):
            self.out("the run-failure notifier (notify_run_failures) is stopped in this instance")
            return
        # Its first tick only sets its cursor: a failure before it would go unnoticed.
        deadline = time.monotonic() + NOTIFIER_FIRST_TICK_SECONDS
        while not daemons.notifier_ready(instance):
            self._check_daemon()
            if time.monotonic() > deadline:
                raise SubmitError(
                    "the daemon never evaluated the run-failure notifier; see `dagster-daemon run`"
                )
            time.sleep(0.5)

    def _notify(self, instance: dg.DagsterInstance, run: dg.DagsterRun) -> None:
        if self.own is None:
            return  # the running daemon's notifier sees it on its next tick
        if not any(process_env.is_set(name) for name in WEBHOOK_VARIABLES):
            self.out(f"no notification: neither {' nor '.join(WEBHOOK_VARIABLES)} is set")
            return
        self.out("waiting for the run-failure notifier's next tick (every 30 s)")
        verdict = daemons.wait_for_notifier(
            instance, run.run_id, _failure_time(instance, run.run_id), NOTIFIER_REACTION_SECONDS
        )
        if verdict is None:
            self.out("the run-failure notifier did not tick in time: no notification seen")
        elif verdict.error:
            self.out(redact(f"the run-failure notifier failed: {verdict.error.splitlines()[0]}"))
        elif verdict.handled:
            self.out("notification sent (notify_run_failures)")

    def _cancel(self, instance: dg.DagsterInstance, run_id: str) -> None:
        run = instance.get_run_by_id(run_id)
        if run is None or run.is_finished:
            return
        self.out(f"stopping run {run_id}")
        instance.run_coordinator.cancel_run(run_id)
        deadline = time.monotonic() + CANCEL_SECONDS
        while time.monotonic() < deadline:
            run = instance.get_run_by_id(run_id)
            if run is None or run.is_finished:
                return
            time.sleep(0.5)
        instance.report_run_canceled(run)

    def execute(self) -> int:
        request = self.request
        run_config = run_config_from_files(request.config_files)
        previous = {sig: signal.signal(sig, _interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
        run_id = ""
        with daemons.start_lock(process_env.dagster_home()):
            instance = dg.DagsterInstance.get()
            instance.get_runs(limit=1)  # a fresh instance's storage is created here, one command at a time
            instance.get_daemon_heartbeats()
        with instance:
            try:
                if not isinstance(instance.run_coordinator, QueuedRunCoordinator):
                    raise SubmitError(
                        f"{instance.root_directory}/dagster.yaml: the run coordinator is "
                        f"{type(instance.run_coordinator).__name__}; runs must go through the run queue "
                        "(QueuedRunCoordinator, the default)"
                    )
                self._ensure_daemon(instance, f"no Dagster daemon is running for {instance.root_directory}")

                def before(run: dg.DagsterRun) -> None:
                    nonlocal run_id
                    run_id = run.run_id
                    self._before_submit(instance, run)

                submit_run(instance, request.workspace, request.job_name, run_config, request.tags, before)
                follower = RunFollower(instance, run_id, verbose=request.verbose, out=self.out)
                while not (run := follower.poll()).is_finished:
                    self._check_daemon()
                    queued = run.status == dg.DagsterRunStatus.QUEUED
                    if self.own is None and queued and not daemons.daemon_running(instance):
                        self._ensure_daemon(instance, "the Dagster daemon stopped beating")
                    time.sleep(request.poll_seconds)
                if run.status == dg.DagsterRunStatus.FAILURE:
                    self._notify(instance, run)
                self._wait_for_other_runs(instance, run_id)
                self._stop_daemon(instance)  # its own log lines end before the summary
                records = instance.get_records_for_run(run_id, limit=100_000).records
                facts = facts_from_records(run, records, _seconds(instance, run_id))
                self.out("")
                for line in summary_lines(facts):
                    self.out(line)
                return 0 if run.status == dg.DagsterRunStatus.SUCCESS else 1
            except Interrupted as exc:
                self.out(f"{exc}: stopping")
                if run_id:
                    self._cancel(instance, run_id)
                return 130
            finally:
                for sig, handler in previous.items():
                    signal.signal(sig, handler)
                self._stop_daemon(instance)
                sys.stdout.flush()
