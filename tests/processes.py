"""Processes and temporary directories that a test session owns, and nothing left behind.

Every server a fixture, benchmark or harness starts goes through `start_process`:
- it runs in its own process group (so its own children are stopped with it);
- on Linux it gets PR_SET_PDEATHSIG=SIGKILL, so even a SIGKILLed Python never leaves it orphaned;
- it is stopped (SIGTERM to its group, SIGKILL after a grace period) by `stop_process`, at interpreter
  exit (atexit), and when the Python process receives SIGTERM or SIGINT (`install_signal_handlers`).

`run_process` runs one to its end the same way (timed, its peak RSS from wait4).
`owned_tempdir` creates a temporary directory that is removed on the same occasions.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

_PR_SET_PDEATHSIG = 1
_lock = threading.Lock()
_processes: list[subprocess.Popen[bytes]] = []
_stop_signals: dict[int, signal.Signals] = {}
_tempdirs: list[Path] = []
_handlers_installed = False


def _die_with_parent() -> None:
    """preexec_fn: a new process group, and SIGKILL when the parent dies (Linux)."""
    os.setpgrp()
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL("libc.so.6", use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def start_process(
    args: Sequence[str],
    *,
    log: IO[bytes] | int | None = subprocess.DEVNULL,
    env: dict[str, str] | None = None,
    cwd: str | Path | None = None,
    user: str | None = None,
    stop_signal: signal.Signals = signal.SIGTERM,
) -> subprocess.Popen[bytes]:
    """Start `args` as an owned process (stdin closed, output to `log`).

    `user` runs it as that user (root only; the death signal is set after the switch, which
    would clear it). `stop_signal` is what `stop_process` sends its group first (PostgreSQL:
    SIGQUIT, its immediate shutdown)."""
    process = _spawn(args, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=cwd, user=user)
    with _lock:
        _stop_signals[process.pid] = stop_signal
    return process


def _spawn(
    args: Sequence[str],
    *,
    stdout: IO[bytes] | int | None,
    stderr: IO[bytes] | int | None,
    env: dict[str, str] | None,
    user: str | None,
    cwd: str | Path | None = None,
) -> subprocess.Popen[bytes]:
    """Popen an owned process (own group, death signal, stdin closed) and register it for cleanup."""
    install_signal_handlers()
    process = subprocess.Popen(
        list(args),
        stdin=subprocess.DEVNULL,
        stdout=stdout,
        stderr=stderr,
        env=env,
        cwd=cwd,
        user=user,
        group=user,
        extra_groups=[] if user else None,
        preexec_fn=_die_with_parent,
    )
    with _lock:
        _processes.append(process)
    return process


def stop_process(process: subprocess.Popen[bytes], grace: float = 5.0) -> None:
    """Its stop signal to the process group, SIGKILL after `grace` seconds; reaped either way."""
    with _lock:
        stop_signal = _stop_signals.get(process.pid, signal.SIGTERM)
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, stop_signal)
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(grace)
    # Children that outlived their leader in the same group.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    with _lock:
        if process in _processes:
            _processes.remove(process)
        _stop_signals.pop(process.pid, None)


@dataclass(frozen=True)
class Finished:
    """A process `run_process` ran to its end."""

    returncode: int
    stdout: bytes
    seconds: float  # wall time from spawn to exit
    maxrss: int  # bytes: ru_maxrss from wait4 (the largest of it and its waited-for descendants)


def run_process(
    args: Sequence[str],
    *,
    env: dict[str, str] | None = None,
    user: str | None = None,
    stdout: IO[bytes] | int | None = subprocess.PIPE,
    on_start: Callable[[int], object] | None = None,
) -> Finished:
    """Run `args` to its end as an owned process (stopped with the others on a signal), timed
    and measured the same way for every caller; stderr is inherited. `on_start` gets its pid.

    ru_maxrss from wait4 includes what the child held between fork and exec (a copy of this
    Python's pages), so it bounds a small program's peak from above."""
    started = time.perf_counter()
    process = _spawn(args, stdout=stdout, stderr=None, env=env, user=user)
    try:
        if on_start is not None:
            on_start(process.pid)
        out = process.stdout.read() if process.stdout is not None else b""
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
    finally:
        if process.stdout is not None:
            process.stdout.close()
        with _lock:
            if process in _processes:
                _processes.remove(process)
    return Finished(process.returncode, out, seconds, usage.ru_maxrss * 1024)


def owned_tempdir(prefix: str) -> Path:
    """A new temporary directory, removed at exit and on SIGTERM/SIGINT (or by `remove_tempdir`)."""
    install_signal_handlers()
    path = Path(tempfile.mkdtemp(prefix=prefix))
    with _lock:
        _tempdirs.append(path)
    return path


def remove_tempdir(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
    with _lock:
        if path in _tempdirs:
            _tempdirs.remove(path)


def cleanup_all() -> None:
    """Stop every owned process (newest first) and remove every owned directory."""
    with _lock:
        processes, dirs = list(reversed(_processes)), list(_tempdirs)
    for process in processes:
        stop_process(process, grace=3.0)
    for path in dirs:
        remove_tempdir(path)


def _on_signal(signum: int, frame: Any) -> None:
    cleanup_all()
    signal.signal(signum, signal.SIG_DFL)
    if signum == signal.SIGINT:
        raise KeyboardInterrupt
    os.kill(os.getpid(), signum)


def install_signal_handlers() -> None:
    """Clean up on SIGTERM/SIGINT and at exit (only from the main thread; idempotent)."""
    global _handlers_installed
    if _handlers_installed:
        return
    atexit.register(cleanup_all)
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            previous = signal.getsignal(signum)
            if previous in (signal.SIG_DFL, signal.default_int_handler, None):
                signal.signal(signum, _on_signal)
    _handlers_installed = True


def processes_with_home(home: Path) -> dict[int, str]:
    """Processes whose environment sets DAGSTER_HOME to `home` (what a test started for that
    instance, however deep), with their command lines."""
    found = {}
    marker = f"DAGSTER_HOME={home}".encode()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if marker in (proc / "environ").read_bytes().split(b"\0"):
                found[int(proc.name)] = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
    return found
