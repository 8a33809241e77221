"""Choosing pg_dump / pg_restore for a server, passing the password, and the pod-exec stream.

Cases:
- an exact major-version match wins over a newer client; a newer one is used when no match
- a pg_dump older than the server is refused, naming every version found and what to install
- the DSN's password goes to the child's environment, never its command line
- the exec stream hands stdout frames on in order, keeps stderr, and turns a non-zero exit, a
  broken session or a non-archive into DumpFailed (with a fake WSClient: no cluster here)
"""

from __future__ import annotations

from pathlib import Path

import pytest
from kubernetes.stream import ws_client

from llm_cost_ops_ops.postgres.backup_errors import DumpFailed, PgToolMissing
from llm_cost_ops_ops.postgres.pod_dump import ExecStream
from llm_cost_ops_ops.postgres.tools import find_pg_tool, libpq_target

pytestmark = pytest.mark.unit


def fake_bindir(root: Path, major: int) -> Path:
    bindir = root / str(major) / "bin"
    bindir.mkdir(parents=True)
    for name in ("pg_dump", "pg_restore"):
        tool = bindir / name
        tool.write_text(f"#!/bin/sh\necho '{name} (PostgreSQL) {major}.3 (Debian {major}.3-1)'\n")
        tool.chmod(0o755)
    return bindir


def test_exact_match_wins_then_newer(tmp_path: Path) -> None:
    dirs = [fake_bindir(tmp_path, m) for m in (14, 16, 17)]
    assert find_pg_tool("pg_dump", 16, dirs).major == 16
    assert find_pg_tool("pg_dump", 15, dirs).version == "16.3"
    assert find_pg_tool("pg_restore", 17, dirs).path == dirs[2] / "pg_restore"


def test_older_pg_dump_is_refused(tmp_path: Path) -> None:
    dirs = [fake_bindir(tmp_path, 14)]
    with pytest.raises(PgToolMissing) as caught:
        find_pg_tool("pg_dump", 16, dirs)
    message = str(caught.value)
    assert "PostgreSQL 16 server" in message and "14.3" in message and "postgresql-client-16" in message


def test_password_travels_in_the_environment_only() -> None:
    target, env = libpq_target("postgresql://backup:s3cr3t-pw@db.internal:5433/llm_cost_ops", "scratch")
    assert "s3cr3t-pw" not in target and "dbname=scratch" in target and "port=5433" in target
    assert env["PGPASSWORD"] == "s3cr3t-pw"


class FakeWs:
    """Frames as the Kubernetes exec websocket delivers them: (channel, bytes)."""

    def __init__(self, frames: list[tuple[int, bytes]], status: str):
        self.frames, self.status = list(frames), status
        self.channels: dict[int, bytes] = {}
        self.closed = False

    def is_open(self) -> bool:
        return bool(self.frames) and not self.closed

    def update(self, timeout: float = 0) -> None:
        if self.frames:
            channel, data = self.frames.pop(0)
            self.channels[channel] = self.channels.get(channel, b"") + data

    def read_channel(self, channel: int, timeout: float = 0) -> bytes:
        return self.channels.pop(channel, b"")

    @property
    def returncode(self) -> int:
        if self.status == "broken":
            raise KeyError("status")
        return 0 if self.status == "Success" else int(self.status)

    def close(self) -> None:
        self.closed = True


def drain(stream: ExecStream) -> bytes:
    out = b""
    while chunk := stream.read(3):
        out += chunk
    return out


def test_exec_stream_passes_stdout_and_keeps_stderr() -> None:
    out, err = ws_client.STDOUT_CHANNEL, ws_client.STDERR_CHANNEL
    ws = FakeWs([(out, b"PGDMP"), (err, b"pg_dump: warning\n"), (out, b"-rest-of-archive")], "Success")
    stream = ExecStream(ws, "pg_dump in pod ns/postgres-0", magic=b"PGDMP")
    assert drain(stream) == b"PGDMP-rest-of-archive"
    stream.finish()
    assert ws.closed


@pytest.mark.parametrize(
    ("frames", "status", "expected"),
    [
        ([(1, b"PGDMP"), (2, b'pg_dump: error: role "x" does not exist\n')], "1", "exited with status 1"),
        ([(1, b"PGDMP partial")], "broken", "without an exit status"),
        ([(1, b"sh: pg_dump: not found")], "Success", "not write a custom-format archive"),
    ],
)
def test_exec_stream_failures(frames: list[tuple[int, bytes]], status: str, expected: str) -> None:
    stream = ExecStream(FakeWs(frames, status), "pg_dump in pod ns/postgres-0", magic=b"PGDMP")
    drain(stream)
    with pytest.raises(DumpFailed, match=expected):
        stream.finish()


def test_exec_stream_reports_stderr() -> None:
    stream = ExecStream(FakeWs([(2, b"FATAL: no such database\n")], "2"), "pg_dump in pod ns/p")
    drain(stream)
    with pytest.raises(DumpFailed, match="FATAL: no such database"):
        stream.finish()
