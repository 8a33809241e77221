"""HTTP/1.1 over a standard-library threading server: keep-alive, JSON bodies, chunked watch
streams, and connections that are cut when the server stops."""

from __future__ import annotations

import contextlib
import json
import select
import socket
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

from .dispatch import Dispatcher, Response
from .faults import RecordedRequest


class HttpServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # idle keep-alive connections must not hold up stop()

    def __init__(self, dispatcher: Dispatcher, record: Callable[[RecordedRequest], None]):
        self.dispatcher = dispatcher
        self.record = record
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Handler)

    def cut_connections(self) -> None:
        with self.connections_lock:
            for connection in list(self.connections):
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: HttpServer

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in separate writes; without NODELAY each response waits on
        # the client's delayed ACK (about 40 ms).
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self.server.connections_lock:
            self.server.connections.add(self.connection)

    def finish(self) -> None:
        with self.server.connections_lock:
            self.server.connections.discard(self.connection)
        with contextlib.suppress(OSError):
            super().finish()

    def log_message(self, format, *args) -> None:
        """Silent: tests read `ApiServer.requests` instead of an access log."""

    def do_GET(self) -> None:
        self._serve()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def _serve(self) -> None:
        split = urlsplit(self.path)
        query = dict(parse_qsl(split.query, keep_blank_values=True))
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        request = RecordedRequest(self.command, split.path, query)
        self.server.record(request)
        headers = {key.lower(): value for key, value in self.headers.items()}
        response = self.server.dispatcher.handle(request, body, headers)
        try:
            if response.stream is not None:
                self._stream(response)
            else:
                self._send(response)
        except (BrokenPipeError, ConnectionResetError, OSError):
            self.close_connection = True

    def _send(self, response: Response) -> None:
        if isinstance(response.payload, str):
            data, content_type = response.payload.encode(), "text/plain"
        else:
            data, content_type = json.dumps(response.payload).encode(), "application/json"
        self.send_response(response.code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for key, value in response.headers.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def _stream(self, response: Response) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

        def send(event: dict) -> None:
            line = json.dumps(event).encode() + b"\n"
            self.wfile.write(b"%x\r\n%s\r\n" % (len(line), line))
            self.wfile.flush()

        assert response.stream is not None
        response.stream(send, self._disconnected)
        self.wfile.write(b"0\r\n\r\n")
        self.close_connection = True

    def _disconnected(self) -> bool:
        readable, _, _ = select.select([self.connection], [], [], 0)
        if not readable:
            return False
        try:
            return self.connection.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True
