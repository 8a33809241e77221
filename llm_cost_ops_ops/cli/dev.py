"""`llm-cost-ops-ops dev` (`make dev`): `dagster dev` that stops, with every process it started, on
Ctrl-C or SIGTERM within a few seconds.

`dagster dev` shuts its webserver and daemon down on SIGINT (KeyboardInterrupt); SIGTERM kills it
outright and leaves them running, and a shell that starts it in the background has it ignore
SIGINT. So it runs in its own process group with default signal handlers; on SIGINT or SIGTERM the
launcher interrupts it, waits, then ends whatever of its group is left (code servers, run workers).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

from .children import die_with_parent, own_group_dying_with_parent

SHUTDOWN_SECONDS = 6.0


def stop_group(process: subprocess.Popen, grace: float = SHUTDOWN_SECONDS) -> None:
    """SIGINT to `dagster dev` (its graceful shutdown), SIGTERM then SIGKILL to its group."""
    for sig, wait in ((signal.SIGINT, grace), (signal.SIGTERM, 2.0)):
        if process.poll() is not None:
            break
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(wait)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, sig)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(2.0)


def run_dev(workspace: Path, host: str, port: str) -> int:
    """Run `dagster dev` on `workspace` until it exits or this process gets SIGINT/SIGTERM."""
    die_with_parent()  # started from make through uv: end when that is killed
    binary = Path(sys.executable).with_name("dagster")
    command = [
        str(binary) if binary.exists() else "dagster",
        "dev",
        "-w",
        str(workspace),
        "-h",
        host,
        "-p",
        port,
    ]
    stopping: list[int] = []

    def on_signal(signum, frame) -> None:
        stopping.append(signum)

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)
    process = subprocess.Popen(command, stdin=subprocess.DEVNULL, preexec_fn=own_group_dying_with_parent)
    try:
        while process.poll() is None and not stopping:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(0.2)
    finally:
        stop_group(process)
    return 0 if stopping else (process.returncode or 0)
