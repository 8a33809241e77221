"""`make dev` and its launcher (`llm-cost-ops-ops dev`) stop with everything they started.

Cases:
- the launcher, started the way a shell starts a background job (SIGINT ignored), answers SIGTERM by
  stopping `dagster dev`, its webserver, daemon and code servers: within 10 s no process of its
  DAGSTER_HOME is left;
- `make dev` answers SIGTERM (to make alone) and Ctrl-C (SIGINT to its process group) the same way.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.processes import processes_with_home

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _processes_of(home: Path) -> list[str]:
    return list(processes_with_home(home).values())


def _wait_until(predicate, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.3)
    return predicate()


def _serving(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture
def dagster_home(queued_dagster_home) -> Path:
    return queued_dagster_home


def _background_job() -> None:
    os.setpgrp()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # what a shell does to a background job


def _started(
    args: list[str], home: Path, project_root: Path, port: int, log: Path, *, background: bool = True
) -> subprocess.Popen:
    env = {**os.environ, "DAGSTER_HOME": str(home)}
    process = subprocess.Popen(
        args,
        cwd=project_root,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        preexec_fn=_background_job if background else os.setpgrp,
    )
    if not _wait_until(lambda: _serving(port) or process.poll() is not None, 120):
        pytest.fail(f"the webserver never answered on {port}: {log.read_text()[-2000:]}")
    assert process.poll() is None, log.read_text()[-2000:]
    assert _wait_until(
        lambda: any("dagster._daemon" in p or "dagster-daemon" in p for p in _processes_of(home)), 30
    )
    return process


def _stopped_cleanly(process: subprocess.Popen, home: Path, log: Path) -> None:
    try:
        assert _wait_until(lambda: process.poll() is not None and not _processes_of(home), 10), (
            _processes_of(home),
            log.read_text()[-2000:],
        )
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        for pid in processes_with_home(home):  # what this test started, found by its own DAGSTER_HOME
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def test_launcher_stops_on_sigterm(project_root, dagster_home, tmp_path):
    port = _free_port()
    log = tmp_path / "dev.log"
    process = _started(
        [str(BIN / "llm-cost-ops-ops"), "dev", "--port", str(port)], dagster_home, project_root, port, log
    )
    process.send_signal(signal.SIGTERM)
    _stopped_cleanly(process, dagster_home, log)


@pytest.mark.parametrize("how", ["sigterm-to-make", "ctrl-c-to-group"])
def test_make_dev_stops(project_root, dagster_home, tmp_path, how):
    if shutil.which("make") is None:
        pytest.skip("no make")
    port = _free_port()
    log = tmp_path / "make.log"
    process = _started(
        ["make", "--no-print-directory", "dev", f"DAGSTER_HOME={dagster_home}", f"DEV_PORT={port}"],
        dagster_home,
        project_root,
        port,
        log,
        background=how == "sigterm-to-make",
    )
    if how == "sigterm-to-make":
        process.send_signal(signal.SIGTERM)
    else:
        os.killpg(process.pid, signal.SIGINT)
    _stopped_cleanly(process, dagster_home, log)
