"""pg_dump run inside the PostgreSQL pod through the Kubernetes exec API, streamed out.

The same as the deployment guide's `kubectl exec -n NS postgres-0 -- pg_dump -U postgres
llm_cost_ops`, but binary-safe (custom format) and streamed: stdout frames are handed on as they
arrive, stderr is kept for the error, and the exit status comes from the exec error channel.
The pod's own pg_dump matches its server. Row counts and the snapshot still come from a DSN
connection to the same server (the Service, or a port-forward), so `--snapshot` makes the dump
and the manifest's counts agree.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from kubernetes import client as k8s_client
from kubernetes.stream import stream, ws_client

from .backup_errors import DumpFailed, PgToolMissing
from .dump import CUSTOM_FORMAT_MAGIC, DumpStream, exit_problem, globals_options, stderr_tail
from .tools import parse_version, server_major

_POLL_SECONDS = 5.0


class ExecStream:
    """A WSClient exec session as a DumpStream."""

    def __init__(self, ws: Any, what: str, *, magic: bytes = b""):
        self._ws, self.what, self._magic = ws, what, magic
        self._buffer = bytearray()
        self._head = b""
        self._stderr: deque[str] = deque(maxlen=20)

    def _pump(self) -> None:
        self._ws.update(timeout=_POLL_SECONDS)
        out = self._ws.read_channel(ws_client.STDOUT_CHANNEL)
        err = self._ws.read_channel(ws_client.STDERR_CHANNEL)
        if err:
            self._stderr.extend(bytes(err).decode(errors="replace").splitlines())
        if out:
            self._buffer += out

    def read(self, size: int) -> bytes:
        while not self._buffer and self._ws.is_open():
            self._pump()
        if not self._buffer:
            self._pump()  # frames buffered before the close
        data = bytes(self._buffer[:size])
        del self._buffer[:size]
        if len(self._head) < len(self._magic):
            self._head += data[: len(self._magic)]
        return data

    def finish(self) -> None:
        """Raises DumpFailed when the command exited non-zero or the session broke off."""
        while self._ws.is_open():
            self._pump()
        tail = stderr_tail(self._stderr)
        try:
            code = self._ws.returncode
        except Exception:
            raise DumpFailed(f"{self.what}: the exec session ended without an exit status: {tail}") from None
        finally:
            self._ws.close()
        if code != 0:
            raise exit_problem(self.what, int(code), tail)
        if self._magic and not self._head.startswith(self._magic):
            raise DumpFailed(f"{self.what} did not write a custom-format archive: {tail}")

    def kill(self) -> None:
        # Closing the session closes pg_dump's stdout in the pod; its next write ends it.
        self._ws.close()


class PodPgDump:
    """pg_dump / pg_dumpall in `namespace/pod` as the database superuser (local socket)."""

    def __init__(
        self,
        api_client: k8s_client.ApiClient,
        namespace: str,
        pod: str = "postgres-0",
        *,
        container: str = "",
        user: str = "postgres",
        database: str = "llm_cost_ops",
    ):
        self._core = k8s_client.CoreV1Api(api_client)
        self.namespace, self.pod, self.container = namespace, pod, container
        self.user, self.database = user, database
        self.description = f"pg_dump in pod {namespace}/{pod}"

    def _exec(self, command: list[str]) -> Any:
        kwargs: dict[str, Any] = {"container": self.container} if self.container else {}
        try:
            ws = stream(
                self._core.connect_get_namespaced_pod_exec,
                self.pod,
                self.namespace,
                command=command,
                stdin=False,
                stdout=True,
                stderr=True,
                tty=False,
                binary=True,
                _preload_content=False,
                **kwargs,
            )
        except Exception as exc:
            raise DumpFailed(f"cannot exec {command[0]} in pod {self.namespace}/{self.pod}: {exc}") from None
        # stream() cannot pass capture_all=False, and the client would otherwise keep a copy of
        # everything stdout carries: the whole dump, in memory.
        ws._all = ws_client._IgnoredIO()
        return ws

    def prepare(self, server_version_num: int) -> str:
        """Raises PgToolMissing when the pod's pg_dump is older than the server."""
        probe = ExecStream(self._exec(["pg_dump", "--version"]), "pg_dump --version")
        out = b""
        while chunk := probe.read(1 << 16):
            out += chunk
        probe.finish()
        parsed = parse_version(out.decode(errors="replace"))
        if not parsed:
            raise PgToolMissing(f"pg_dump in pod {self.namespace}/{self.pod} reports no version")
        version, major = parsed
        if major < server_major(server_version_num):
            raise PgToolMissing(
                f"pg_dump {version} in pod {self.namespace}/{self.pod} is older than the server "
                f"(PostgreSQL {server_major(server_version_num)})"
            )
        self.description = f"pg_dump {version} in pod {self.namespace}/{self.pod}"
        return version

    def dump(self, snapshot: str | None) -> DumpStream:
        command = ["pg_dump", "-U", self.user, "--format=custom", "--compress=0", "--no-password"]
        command += [f"--snapshot={snapshot}"] if snapshot else []
        ws = self._exec([*command, self.database])
        return ExecStream(ws, f"pg_dump in pod {self.namespace}/{self.pod}", magic=CUSTOM_FORMAT_MAGIC)

    def dump_globals(self, *, role_passwords: bool = False) -> DumpStream:
        ws = self._exec(["pg_dumpall", "-U", self.user, *globals_options(role_passwords)])
        return ExecStream(ws, f"pg_dumpall in pod {self.namespace}/{self.pod}")
