"""A fault-injecting HTTP proxy on loopback, put in front of the S3 server.

Requests pass through unchanged (the Host header too, so SigV4 signatures stay valid) unless a
fault matches: `status` answers with an S3-style error (e.g. 500 InternalError) without
forwarding; `drop` reads part of the request body and resets the connection, as a network cut
mid-upload does; `cut` forwards, then resets the connection halfway through the response body (a
download dropped mid-stream). Each fault fires `times` times (-1: always). `requests` records
what was forwarded.
"""

from __future__ import annotations

import http.client
import socket
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "te", "upgrade"}


@dataclass
class Fault:
    match: Callable[[str, str], bool]  # (method, path with query) -> applies
    action: str = "status"  # "status", "drop" or "cut"
    status: int = 500
    times: int = 1
    after_bytes: int = 64 * 1024
    fired: int = field(default=0)


def upload_part(method: str, path: str) -> bool:
    return method == "PUT" and "partNumber=" in path


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            body = bytearray()
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return bytes(body)
                body += self.rfile.read(size)
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _reset(self, after: int) -> None:
        if after:
            self.rfile.read(min(after, int(self.headers.get("Content-Length") or after)))
        # SO_LINGER 0: close with a reset, as a dropped connection looks to the client.
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True

    def _forward(self) -> None:
        fault = self.server.take(self.command, self.path)
        if fault is not None and fault.action == "drop":
            self._reset(fault.after_bytes)
            return
        body = self._read_body()
        if fault is not None and fault.action == "status":
            payload = (
                b"<?xml version='1.0'?><Error><Code>InternalError</Code><Message>injected</Message></Error>"
            )
            self.send_response(fault.status)
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
            return
        self.server.requests.append((self.command, self.path))
        upstream = http.client.HTTPConnection(*self.server.upstream, timeout=30)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
        headers["Content-Length"] = str(len(body))
        upstream.request(self.command, self.path, body=body, headers=headers)
        response = upstream.getresponse()
        data = response.read()
        self.send_response(response.status, response.reason)
        for name, value in response.getheaders():
            # HEAD keeps the object's length; other bodies were read whole and are re-measured.
            if name.lower() not in _HOP and (name.lower() != "content-length" or self.command == "HEAD"):
                self.send_header(name, value)
        if self.command != "HEAD":
            self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        upstream.close()
        if fault is not None:  # "cut"
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            self._reset(0)
        elif self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _forward


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, upstream: tuple[str, int]):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.upstream = upstream
        self.faults: list[Fault] = []
        self.requests: list[tuple[str, str]] = []
        self._lock = threading.Lock()

    def take(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if (fault.times < 0 or fault.fired < fault.times) and fault.match(method, path):
                    fault.fired += 1
                    return fault
        return None


class FaultProxy:
    def __init__(self, upstream_host: str, upstream_port: int):
        self._server = _Server((upstream_host, upstream_port))
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def faults(self) -> list[Fault]:
        return self._server.faults

    @property
    def requests(self) -> list[tuple[str, str]]:
        return self._server.requests

    def start(self) -> FaultProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
