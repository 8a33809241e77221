"""A local webhook receiver on 127.0.0.1 that records every JSON body posted to it.

`fail_next(n, status)` answers the next n posts with `status` (retries are tested with it).
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        status = self.server.receiver.take(self.path, body)
        self.send_response(status)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    receiver: WebhookReceiver


class WebhookReceiver:
    def __init__(self) -> None:
        self.received: list[tuple[str, Any]] = []
        self.attempts = 0
        self._failures: list[int] = []
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.receiver = self

    def take(self, path: str, body: bytes) -> int:
        with self._lock:
            self.attempts += 1
            if self._failures:
                return self._failures.pop(0)
            self.received.append((path, json.loads(body)))
            return 200

    def fail_next(self, count: int, status: int = 503) -> None:
        with self._lock:
            self._failures += [status] * count

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}{path}"

    def bodies(self, path: str | None = None) -> list[Any]:
        with self._lock:
            return [body for p, body in self.received if path is None or p == path]

    def __enter__(self) -> WebhookReceiver:
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
