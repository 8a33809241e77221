"""Where dump bytes come from: a local pg_dump process, or pg_dump in the database pod (pod_dump).

Both give a DumpStream: `read(n)` until b"", then `finish()`, which raises DumpFailed when the
program exited non-zero or was killed; the backup calls it before committing the upload, so a
dump cut short never becomes a visible object. The dump is custom format without compression
(`-Fc -Z0`): zstd downstream compresses better and on other threads.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import signal
import subprocess
import threading
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Protocol, cast

from .backup_errors import DumpFailed
from .connection import redact
from .tools import PgTool, find_pg_tool, libpq_target, server_major

CUSTOM_FORMAT_MAGIC = b"PGDMP"
_F_SETPIPE_SZ = 1031  # Linux: a 1 MiB pipe means 16x fewer wake-ups than the default 64 KiB
_STDERR_LINES = 20


class DumpStream(Protocol):
    def read(self, size: int) -> bytes: ...

    def finish(self) -> None: ...

    def kill(self) -> None: ...


class DumpSource(Protocol):
    """A way to run pg_dump / pg_dumpall against the platform database."""

    description: str

    def prepare(self, server_version_num: int) -> str:
        """Check the tools fit the server; return pg_dump's version. Raises PgToolMissing."""
        ...

    def dump(self, snapshot: str | None) -> DumpStream: ...

    def dump_globals(self, *, role_passwords: bool = False) -> DumpStream:
        """Roles, memberships and tablespaces; role password hashes only when `role_passwords`."""
        ...


def globals_options(role_passwords: bool) -> list[str]:
    """pg_dumpall's options for the globals. Without passwords it reads pg_roles, not pg_authid:
    the hashes stay out of the backup, and a role without superuser can take it."""
    return ["--globals-only", "--no-password", *([] if role_passwords else ["--no-role-passwords"])]


def stderr_tail(lines: deque[str], secret_source: str = "") -> str:
    text = " | ".join(line.strip() for line in lines if line.strip()) or "no message"
    return redact(text, secret_source) if secret_source else text


def exit_problem(what: str, code: int, stderr: str) -> DumpFailed:
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = str(-code)
        return DumpFailed(f"{what} was killed by signal {name}: {stderr}")
    return DumpFailed(f"{what} exited with status {code}: {stderr}")


class ProcessStream:
    """A child process's stdout as a DumpStream; stderr is kept (last lines) for the error."""

    def __init__(self, args: list[str], env: dict[str, str], what: str, *, magic: bytes = b"", dsn: str = ""):
        self.what, self._magic, self._dsn = what, magic, dsn
        self._head = b""
        self._stderr: deque[str] = deque(maxlen=_STDERR_LINES)
        try:
            self.process = subprocess.Popen(
                args,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                stdin=subprocess.DEVNULL,
                env=env,
                bufsize=0,  # unbuffered: read() fills its own chunk straight from the pipe
            )
        except OSError as exc:
            raise DumpFailed(f"cannot start {what} ({args[0]}): {exc.strerror or exc}") from None
        assert self.process.stdout is not None and self.process.stderr is not None
        self._stdout = cast(io.FileIO, self.process.stdout)  # bufsize=0: the raw pipe
        with contextlib.suppress(OSError):
            fcntl.fcntl(self._stdout.fileno(), _F_SETPIPE_SZ, 1 << 20)
        self._reader = threading.Thread(target=self._drain, args=(self.process.stderr,), daemon=True)
        self._reader.start()

    def _drain(self, stream: IO[bytes]) -> None:
        for line in stream:
            self._stderr.append(line.decode(errors="replace"))

    def read(self, size: int) -> bytes:
        """Up to `size` bytes, fewer only at the end. pg_dump writes its archive 4 KiB at a time
        (its stdio buffer on a pipe): handing each piece on as it comes cost a 1 MiB allocation
        and a pass through every later stage per 4-8 KiB; filling the chunk here takes 5% off
        this process's CPU in a backup (make bench-backup)."""
        chunk = bytearray(size)
        view, filled = memoryview(chunk), 0
        while filled < size:
            got = self._stdout.readinto(view[filled:])
            if not got:
                break
            filled += got
        view.release()
        del chunk[filled:]
        if len(self._head) < len(self._magic):
            self._head += chunk[: len(self._magic) - len(self._head)]
        return bytes(chunk)

    def finish(self) -> None:
        """Wait for the process. Raises DumpFailed (exit status or signal, and its stderr)."""
        code = self.process.wait()
        self._reader.join(timeout=5)
        self._stdout.close()
        tail = stderr_tail(self._stderr, self._dsn)
        if code != 0:
            raise exit_problem(self.what, code, tail)
        if self._magic and not self._head.startswith(self._magic):
            raise DumpFailed(f"{self.what} did not write a custom-format archive: {tail}")

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        self._stdout.close()


class LocalPgDump:
    """pg_dump and pg_dumpall run here against the DSN, chosen to fit the server's version."""

    def __init__(self, dsn: str, *, search_dirs: Sequence[Path] | None = None):
        self._dsn = dsn
        self._search = search_dirs
        self._pg_dump: PgTool | None = None
        self._pg_dumpall: PgTool | None = None
        self.description = "local pg_dump"

    def prepare(self, server_version_num: int) -> str:
        major = server_major(server_version_num)
        self._pg_dump = find_pg_tool("pg_dump", major, self._search)
        self._pg_dumpall = find_pg_tool("pg_dumpall", major, self._search)
        self.description = f"local pg_dump {self._pg_dump.version} ({self._pg_dump.path})"
        return self._pg_dump.version

    def dump(self, snapshot: str | None) -> DumpStream:
        assert self._pg_dump is not None, "prepare() first"
        target, env = libpq_target(self._dsn)
        args = [str(self._pg_dump.path), "--format=custom", "--compress=0", "--no-password"]
        args += [f"--snapshot={snapshot}"] if snapshot else []
        return ProcessStream(
            [*args, f"--dbname={target}"], env, "pg_dump", magic=CUSTOM_FORMAT_MAGIC, dsn=self._dsn
        )

    def dump_globals(self, *, role_passwords: bool = False) -> DumpStream:
        assert self._pg_dumpall is not None, "prepare() first"
        target, env = libpq_target(self._dsn)
        args = [str(self._pg_dumpall.path), *globals_options(role_passwords), f"--dbname={target}"]
        return ProcessStream(args, env, "pg_dumpall --globals-only", dsn=self._dsn)
