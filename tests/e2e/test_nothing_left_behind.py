"""Nothing left behind: the throwaway PostgreSQL and SeaweedFS servers (tests/postgres_server.py,
tests/s3_server.py) go with the Python process that started them, through tests/processes.py.

Each case runs a child Python with its own TMPDIR, waits until its servers are up, signals it and
then asserts with `ps` and the filesystem that no process of its servers (matched by that TMPDIR on
their command lines, and by the process groups those had) and no file under the TMPDIR is left.

Cases:
- a child that started both servers the way the fixtures do, sent SIGTERM, and sent SIGINT (Ctrl-C);
- `benchmarks/bench_backup.py` (PostgreSQL archiving to pgBackRest, SeaweedFS with TLS) signalled
  while it measures, with SIGTERM and with SIGINT: it exits non-zero and leaves nothing.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
FIXTURE_CHILD = textwrap.dedent(
    """
    import time
    from tests.postgres_server import ThrowawayPostgres
    from tests.s3_server import SeaweedS3
    s3 = SeaweedS3().start()
    pg = ThrowawayPostgres().start()
    print("ready", flush=True)
    time.sleep(600)
    """
)


@pytest.fixture
def tmpdir_for_child() -> Iterator[Path]:
    """A TMPDIR the server users can traverse (the postgres user, when running as root)."""
    path = Path(tempfile.mkdtemp(prefix="nothing-left-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def processes_under(tmpdir: Path) -> dict[int, int]:
    """pid -> process group of every process whose command line names `tmpdir`."""
    out = subprocess.run(
        ["ps", "-ww", "-eo", "pid=,pgid=,stat=,args="], capture_output=True, text=True
    ).stdout
    found = {}
    for line in out.splitlines():
        pid, pgid, stat, args = line.split(None, 3)
        if str(tmpdir) in args and not stat.startswith("Z"):
            found[int(pid)] = int(pgid)
    return found


def alive_in_groups(groups: set[int]) -> list[str]:
    out = subprocess.run(["ps", "-eo", "pid=,pgid=,stat=,comm="], capture_output=True, text=True).stdout
    return [
        line for line in out.splitlines() if int(line.split()[1]) in groups and "Z" not in line.split()[2]
    ]


def run_and_signal(
    args: list[str], tmpdir: Path, ready: str, signum: signal.Signals, env: dict[str, str]
) -> int:
    """Start `args`, wait for a line starting with `ready`, send `signum`; assert nothing is left."""
    child = subprocess.Popen(
        args, cwd=ROOT, env={**os.environ, **env, "TMPDIR": str(tmpdir)}, stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None
        for line in child.stdout:
            if line.startswith(ready):
                break
        else:
            pytest.fail(f"the child exited ({child.wait()}) before printing {ready!r}")
        servers = processes_under(tmpdir)
        names = subprocess.run(
            ["ps", "-o", "comm=", "-p", ",".join(map(str, servers))], capture_output=True, text=True
        ).stdout.split()
        assert {"postgres", "weed"} <= set(names), names
        assert any(tmpdir.iterdir())
        child.send_signal(signum)
        returncode = child.wait(60)
        groups = set(servers.values())
        deadline = time.monotonic() + 10
        while (processes_under(tmpdir) or alive_in_groups(groups)) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert processes_under(tmpdir) == {}
        assert alive_in_groups(groups) == []
        assert list(tmpdir.iterdir()) == []
        return returncode
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_fixture_servers_go_with_their_python(tmpdir_for_child: Path, signum: signal.Signals) -> None:
    returncode = run_and_signal([sys.executable, "-c", FIXTURE_CHILD], tmpdir_for_child, "ready", signum, {})
    assert returncode != 0


@pytest.mark.skipif(
    not shutil.which("pgbackrest") and os.geteuid() != 0, reason="bench-backup needs pgBackRest"
)
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_benchmark_signalled_leaves_nothing(tmpdir_for_child: Path, signum: signal.Signals) -> None:
    # "database:" is printed once both servers run, the stanza exists and the data is in.
    args = [sys.executable, str(ROOT / "benchmarks" / "bench_backup.py")]
    returncode = run_and_signal(args, tmpdir_for_child, "database:", signum, {"BENCH_BACKUP_MB": "1"})
    assert returncode != 0
