"""The Dagster daemon a submitted run needs: it dequeues runs (honouring the queue's limits) and
evaluates the sensors, the run-failure notifier among them.

When none is running for the instance (no fresh heartbeat), the command starts one for its own
duration, in its own process group, and stops the group when done.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
from dagster._core.scheduler.instigation import InstigatorState, InstigatorStatus, InstigatorType, TickStatus

from .children import own_group_dying_with_parent

# The daemon beats every 30 s; a beat older than this means no daemon is running.
HEARTBEAT_FRESH_SECONDS = 75.0
NEEDED_DAEMONS = ("QUEUED_RUN_COORDINATOR", "SENSOR")
NOTIFIER_SENSOR = "notify_run_failures"


def daemon_running(instance: dg.DagsterInstance, now: float | None = None) -> bool:
    """A daemon beat for the run queue and the sensors within HEARTBEAT_FRESH_SECONDS."""
    now = time.time() if now is None else now
    beats = instance.get_daemon_heartbeats()
    return all(
        name in beats and now - beats[name].timestamp < HEARTBEAT_FRESH_SECONDS for name in NEEDED_DAEMONS
    )


# Runs a daemon is serving: its process group holds their run workers, so it must outlive them.
ACTIVE_STATUSES = (
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
)
FIRST_BEAT_SECONDS = 90.0


@contextlib.contextmanager
def start_lock(home: str | Path) -> Iterator[None]:
    """One command at a time opens a fresh instance in `home` (creating its storage) and decides
    whether to start a daemon for it (waiting for its first beat), so two commands started together
    neither race on the storage's creation nor run two daemons on one run queue."""
    path = Path(home) / ".llm-cost-ops-ops-daemon.lock"
    with open(path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def active_runs(instance: dg.DagsterInstance, besides: str = "") -> list[str]:
    """Ids of the runs of `instance` a daemon still serves (queued, starting, running, canceling)."""
    runs = instance.get_runs(filters=dg.RunsFilter(statuses=list(ACTIVE_STATUSES)))
    return [run.run_id for run in runs if run.run_id != besides]


@dataclass
class OwnDaemon:
    """A `dagster-daemon run` this command started; `stop()` ends its whole process group."""

    process: subprocess.Popen[bytes]
    log_path: Path
    started_at: float

    @classmethod
    def start(cls, workspace_file: Path, *, echo: bool = False) -> OwnDaemon:
        binary = Path(sys.executable).with_name("dagster-daemon")
        command = [str(binary) if binary.exists() else "dagster-daemon", "run", "-w", str(workspace_file)]
        handle, name = tempfile.mkstemp(prefix="llm-cost-ops-ops-daemon-", suffix=".log")
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=None if echo else handle,
            stderr=None if echo else subprocess.STDOUT,
            preexec_fn=own_group_dying_with_parent,
        )
        os.close(handle)
        return cls(process, Path(name), time.time())

    def alive(self) -> bool:
        return self.process.poll() is None

    def wait_for_first_beat(self, instance: dg.DagsterInstance, timeout: float = FIRST_BEAT_SECONDS) -> bool:
        """Whether the daemon beat (run queue and sensors) within `timeout`; False when it exited."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.alive():
            if daemon_running(instance):
                return True
            time.sleep(0.5)
        return False

    def log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, grace: float = 8.0) -> None:
        """SIGTERM to the group (daemon, its code server, run workers), SIGKILL after `grace`."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(grace)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(2)
        self.log_path.unlink(missing_ok=True)

    def forget_heartbeats(self, instance: dg.DagsterInstance) -> None:
        """Drop the beats only this daemon wrote, so the next command does not take a stopped daemon
        for a running one (beats of a daemon that started meanwhile are kept)."""
        beats = instance.get_daemon_heartbeats().values()
        if beats and all(beat.timestamp >= self.started_at - 1 for beat in beats):
            ids = {beat.daemon_id for beat in beats}
            if len(ids) == 1:
                instance.wipe_daemon_heartbeats()


def notifier_state(instance: dg.DagsterInstance) -> InstigatorState | None:
    """The stored state of the run-failure notifier sensor (None before the daemon first ticked it)."""
    states = instance.all_instigator_state(instigator_type=InstigatorType.SENSOR)
    return next((s for s in states if s.name == NOTIFIER_SENSOR), None)


def notifier_stopped(state: InstigatorState | None) -> bool:
    return state is not None and state.status == InstigatorStatus.STOPPED


def notifier_ready(instance: dg.DagsterInstance) -> bool:
    """The notifier has its cursor: it will see every run failure from now on (its first tick only
    sets the cursor, skipping the failures before it)."""
    state = notifier_state(instance)
    data = state.instigator_data if state else None
    return bool(data is not None and getattr(data, "cursor", None))


@dataclass(frozen=True)
class NotifierVerdict:
    handled: bool  # the sensor reacted to the run (sent, or tried to send, its message)
    error: str = ""


def wait_for_notifier(
    instance: dg.DagsterInstance,
    run_id: str,
    failed_at: float,
    timeout: float,
    *,
    clock: Callable[[], float] = time.monotonic,
    sleeper: Callable[[float], None] = time.sleep,
) -> NotifierVerdict | None:
    """The notifier's first finished tick that began after `failed_at` (it saw the failure): whether
    it reacted to `run_id`, and its error if it failed. None when no such tick came in `timeout`."""
    deadline = clock() + timeout
    while clock() < deadline:
        state = notifier_state(instance)
        if state is not None:
            for tick in instance.get_ticks(state.instigator_origin_id, state.selector_id, limit=10):
                if tick.timestamp <= failed_at or tick.status == TickStatus.STARTED:
                    continue
                if run_id in (tick.origin_run_ids or []):
                    error = tick.error.message.strip() if tick.error else ""
                    return NotifierVerdict(True, error)
                if tick.status in (TickStatus.SKIPPED, TickStatus.SUCCESS):
                    return NotifierVerdict(False)
                if tick.status == TickStatus.FAILURE:
                    return NotifierVerdict(False, tick.error.message.strip() if tick.error else "failed")
        sleeper(1.0)
    return None
