"""A local TCP listener that relays every accepted connection to a freshly opened remote socket.

The port-forward uses it with a Kubernetes port-forward stream as the remote; tests use a plain
socket. One thread accepts; one thread per connection copies bytes both ways until either side
closes.
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading
from collections.abc import Callable
from typing import Any

CHUNK = 65536


def _pump(local: socket.socket, remote: Any) -> None:
    peers = {local: remote, remote: local}
    try:
        while True:
            readable, _, _ = select.select(list(peers), [], [], 30)
            if not readable:
                return  # idle for 30 s: the smoke client has gone
            for source in readable:
                data = source.recv(CHUNK)
                if not data:
                    return
                peers[source].sendall(data)
    except OSError:
        return
    finally:
        for end in (local, remote):
            with contextlib.suppress(OSError):
                end.close()


class TcpRelay:
    """Listens on 127.0.0.1:<free port>; `port` is where to connect."""

    def __init__(self, connect_remote: Callable[[], Any]):
        self._connect_remote = connect_remote
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(16)
        self.port: int = self._listener.getsockname()[1]
        self._closed = threading.Event()
        self.errors: list[str] = []
        self._thread = threading.Thread(target=self._accept, name=f"relay:{self.port}", daemon=True)

    def start(self) -> TcpRelay:
        self._thread.start()
        return self

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                local, _ = self._listener.accept()
            except OSError:
                return  # closed
            try:
                remote = self._connect_remote()
            except Exception as exc:  # the caller sees a closed connection; the reason is kept
                self.errors.append(f"{type(exc).__name__}: {exc}"[:300])
                local.close()
                continue
            threading.Thread(target=_pump, args=(local, remote), daemon=True).start()

    def close(self) -> None:
        self._closed.set()
        with contextlib.suppress(OSError):
            self._listener.close()

    def __enter__(self) -> TcpRelay:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
