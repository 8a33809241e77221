"""A local stand-in for a running LLM Cost Ops environment, over real HTTP on 127.0.0.1.

Four servers, as the smoke tests see an environment: the API (port `http`: /health, /ready, /live,
/info, /api/v1/pricing, POST /api/v1/usage), its metrics port (/metrics, Prometheus text),
Prometheus (/api/v1/targets) and Grafana (/api/health). Response shapes follow
../shared/platform/application-facts.md.

Faults, switchable while running (`stub.faults = {...}` or `with stub.fault(...)`):
`500` (every API answer is 500), `slow` (API answers after `slow_seconds`), `wrong-version`,
`missing-family` (no http_request_duration_seconds), `malformed-metrics`, `target-down`,
`grafana-down`, `unauthorized` (writes answer 401).
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

METRICS = """\
# HELP http_requests_total Total HTTP requests.
# TYPE http_requests_total counter
http_requests_total{method="GET",path="/health",status="200"} 42
# HELP http_request_duration_seconds HTTP request latency.
# TYPE http_request_duration_seconds histogram
http_request_duration_seconds_bucket{le="0.1"} 40
http_request_duration_seconds_bucket{le="+Inf"} 42
http_request_duration_seconds_sum 1.25
http_request_duration_seconds_count 42
# HELP llm_cost_ops_uptime_seconds Uptime.
# TYPE llm_cost_ops_uptime_seconds gauge
llm_cost_ops_uptime_seconds 120
# HELP llm_cost_ops_db_connections_active Active database connections.
# TYPE llm_cost_ops_db_connections_active gauge
llm_cost_ops_db_connections_active 3
"""


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, stub: AppStub, role: str):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.stub, self.role = stub, role

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, *args: Any) -> None:
        pass

    def _send(self, status: int, body: Any, content_type: str = "application/json") -> None:
        data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self.server.stub.record(self.server.role, "GET", self.path, dict(self.headers))
        status, body, kind = self.server.stub.answer(self.server.role, "GET", self.path.split("?")[0], None)
        self._send(status, body, kind)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        payload = json.loads(self.rfile.read(length) or b"null")
        self.server.stub.record(self.server.role, "POST", self.path, dict(self.headers))
        status, body, kind = self.server.stub.answer(self.server.role, "POST", self.path, payload)
        self._send(status, body, kind)


class AppStub:
    def __init__(self, version: str = "1.4.2", slow_seconds: float = 0.4):
        self.version, self.slow_seconds = version, slow_seconds
        self.faults: set[str] = set()
        self.requests: list[tuple[str, str, str, dict]] = []
        self.posted: list[Any] = []
        self._servers = {role: _Server(self, role) for role in ("api", "metrics", "prometheus", "grafana")}
        self._lock = threading.Lock()

    def record(self, role: str, method: str, path: str, headers: dict) -> None:
        with self._lock:
            self.requests.append((role, method, path, headers))

    def start(self) -> AppStub:
        for server in self._servers.values():
            threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        for server in self._servers.values():
            server.shutdown()
            server.server_close()

    def __enter__(self) -> AppStub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def url(self, role: str) -> str:
        return self._servers[role].url

    def operations(self) -> dict[str, str]:
        """The `operations` URLs of an environment spec that point here."""
        return {
            "base_url": self.url("api"),
            "metrics_url": self.url("metrics"),
            "prometheus_url": self.url("prometheus"),
            "grafana_url": self.url("grafana"),
        }

    @contextlib.contextmanager
    def fault(self, *names: str) -> Iterator[AppStub]:
        self.faults |= set(names)
        try:
            yield self
        finally:
            self.faults -= set(names)

    def answer(self, role: str, method: str, path: str, payload: Any) -> tuple[int, Any, str]:
        if role == "api" and "slow" in self.faults:
            time.sleep(self.slow_seconds)
        if role == "api" and "500" in self.faults:
            return 500, {"error": "internal server error"}, "application/json"
        handler = getattr(self, f"_{role}")
        return handler(method, path, payload)

    def _api(self, method: str, path: str, payload: Any) -> tuple[int, Any, str]:
        version = "0.0.1-wrong" if "wrong-version" in self.faults else self.version
        health = {
            "status": "healthy",
            "version": version,
            "uptime_seconds": 120,
            "components": [{"name": "api", "status": "healthy", "message": None}],
        }
        if method == "GET" and path in ("/health", "/ready", "/live"):
            return 200, health, "application/json"
        if method == "GET" and path == "/info":
            return 200, {"service": "llm-cost-ops", "version": version, "agents": []}, "application/json"
        if method == "GET" and path == "/api/v1/pricing":
            return 200, {"pricing": [{"provider": "openai", "model": "gpt-4o-mini"}]}, "application/json"
        if method == "POST" and path == "/api/v1/usage":
            if "unauthorized" in self.faults:
                return 401, {"error": "unauthorized"}, "application/json"
            self.posted.append(payload)
            return 201, {"id": len(self.posted)}, "application/json"
        return 404, {"error": "not found"}, "application/json"

    def _metrics(self, method: str, path: str, payload: Any) -> tuple[int, Any, str]:
        if path != "/metrics":
            return 404, "not found\n", "text/plain"
        text = METRICS
        if "missing-family" in self.faults:
            text = "\n".join(line for line in text.splitlines() if "http_request_duration" not in line) + "\n"
        if "malformed-metrics" in self.faults:
            text += 'http_requests_total{method="GET" 42\n'
        return 200, text, "text/plain; version=0.0.4"

    def _prometheus(self, method: str, path: str, payload: Any) -> tuple[int, Any, str]:
        health = "down" if "target-down" in self.faults else "up"
        targets = [
            {
                "labels": {"job": "llm-cost-ops-api", "pod": f"llm-cost-ops-{i}", "namespace": "ns"},
                "scrapePool": "llm-cost-ops-api",
                "scrapeUrl": f"http://10.0.0.{i}:9090/metrics",
                "health": health if i == 0 else "up",
                "lastError": "connection refused" if health == "down" and i == 0 else "",
            }
            for i in range(2)
        ]
        targets.append({"labels": {"job": "prometheus"}, "scrapePool": "prometheus", "health": "up"})
        return 200, {"status": "success", "data": {"activeTargets": targets}}, "application/json"

    def _grafana(self, method: str, path: str, payload: Any) -> tuple[int, Any, str]:
        if "grafana-down" in self.faults:
            return 503, {"database": "failing"}, "application/json"
        return 200, {"commit": "abc", "database": "ok", "version": "11.0.0"}, "application/json"
