"""A PostgreSQL server for the tests: the configured one, or a throwaway started from the binaries.

`LLM_COST_OPS_OPS_TEST_DSN` (an admin DSN such as postgresql://postgres@127.0.0.1:5432/postgres)
selects an existing server. Without it, a throwaway cluster is created with initdb in a temporary
directory on a free loopback port and removed at the end (as the `postgres` user when running as
root: initdb refuses to run as root), by the process hygiene of tests/processes.py.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import psycopg

from tests import processes

DSN_ENV = "LLM_COST_OPS_OPS_TEST_DSN"
START_DEADLINE_SECONDS = 60


def pg_bindir() -> Path:
    """The newest PostgreSQL server binaries on this machine ($PG_BINDIR first)."""
    if os.environ.get("PG_BINDIR"):
        return Path(os.environ["PG_BINDIR"])
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name))
    for candidate in reversed(candidates):
        if (candidate / "initdb").exists():
            return candidate
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    raise RuntimeError("no PostgreSQL server binaries (initdb) found; install postgresql or set PG_BINDIR")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ThrowawayPostgres:
    """initdb, then `postgres` as an owned process (tests/processes.py) on a free port.

    The server is this Python's child in its own process group, with a death signal: it is stopped
    (immediate shutdown) and its directory removed by stop(), at exit, on SIGTERM/SIGINT, and it
    dies with a SIGKILLed parent. `settings` are extra postgresql.conf lines (name -> value)."""

    def __init__(self, settings: dict[str, str] | None = None) -> None:
        self.bindir = pg_bindir()
        self.root = processes.owned_tempdir("llm-cost-ops-ops-pg-")
        self.data = self.root / "data"
        self.port = _free_port()
        self.settings = settings or {}
        self.process: subprocess.Popen[bytes] | None = None
        self.user = "postgres" if os.geteuid() == 0 else None
        if self.user:
            shutil.chown(self.root, self.user, self.user)

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    @property
    def socket_dir(self) -> Path:
        return self.root

    def start(self) -> ThrowawayPostgres:
        """initdb and launch()."""
        args = [str(self.bindir / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust"]
        args += ["--no-sync", "-E", "UTF8", "--locale=C"]
        subprocess.run(args, check=True, capture_output=True, text=True, user=self.user, group=self.user)
        if self.settings:
            lines = "".join(f"{k} = '{v}'\n" for k, v in self.settings.items())
            with open(self.data / "postgresql.conf", "a") as conf:
                conf.write(lines)
        return self.launch()

    def launch(self) -> ThrowawayPostgres:
        """Start the server on the data directory (already initialised or restored) and wait until
        it accepts connections (crash or archive recovery included)."""
        options = {
            "port": str(self.port), "unix_socket_directories": str(self.root),
            "listen_addresses": "127.0.0.1", "fsync": "off", "synchronous_commit": "off",
            "full_page_writes": "off", "max_connections": "100",
        }  # fmt: skip
        args = [str(self.bindir / "postgres"), "-D", str(self.data)]
        args += [a for k, v in options.items() for a in ("-c", f"{k}={v}")]
        log = open(self.root / "server.log", "ab")  # noqa: SIM115 - the server owns it until stop()
        self.process = processes.start_process(args, log=log, user=self.user, stop_signal=signal.SIGQUIT)
        log.close()
        deadline = time.monotonic() + START_DEADLINE_SECONDS
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"postgres exited ({self.process.returncode}): {self.log_tail()}")
            try:
                psycopg.connect(self.dsn, connect_timeout=2).close()
                return self
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"postgres on port {self.port} not ready in time") from None
                time.sleep(0.1)

    def log_tail(self, lines: int = 10) -> str:
        path = self.root / "server.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        return " | ".join(text.strip().splitlines()[-lines:])

    def stop(self) -> None:
        """Stop the server (if running) and remove its directory."""
        if self.process is not None:
            processes.stop_process(self.process)
            self.process = None
        processes.remove_tempdir(self.root)
