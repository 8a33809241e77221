"""HTTP for smoke checks: one httpx client, a latency budget, answers that never raise.

A request that fails to connect or exceeds its timeout is an `Answer` with no status and the error,
so each check reports what it saw instead of stopping the suite. The timeout is a multiple of the
budget: a slow answer is still measured and reported as over budget rather than cut off at it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

if TYPE_CHECKING:
    import httpx

TIMEOUT_FACTOR = 3.0


def public_url(url: str) -> str:
    """The URL without user:password, for metadata and messages."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))


@dataclass(frozen=True)
class Answer:
    url: str
    status: int | None
    latency_seconds: float
    text: str = ""
    error: str = ""

    def json(self) -> Any:
        """The body as JSON, or None when it is not JSON."""
        try:
            return json.loads(self.text)
        except ValueError:
            return None

    def describe(self) -> str:
        if self.status is None:
            return f"no answer ({self.error})"
        return f"HTTP {self.status} in {self.latency_seconds * 1000:.0f} ms"


class HttpProbe:
    """GET and POST against one environment with a latency budget per request."""

    def __init__(
        self,
        budget_seconds: float,
        *,
        headers: dict[str, str] | None = None,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ):
        self.budget_seconds = budget_seconds
        self.clock = clock
        import httpx  # here, not at module level: the code location loads without it

        self._client = httpx.Client(
            timeout=budget_seconds * TIMEOUT_FACTOR,
            headers=headers or {},
            transport=transport,
            follow_redirects=False,
        )

    def request(self, method: str, url: str, body: dict[str, Any] | None = None) -> Answer:
        import httpx

        started = self.clock()
        shown = public_url(url)
        try:
            response = self._client.request(method, url, json=body)
        except httpx.HTTPError as exc:
            return Answer(shown, None, self.clock() - started, error=f"{type(exc).__name__}: {exc}"[:200])
        return Answer(shown, response.status_code, self.clock() - started, response.text)

    def get(self, url: str) -> Answer:
        return self.request("GET", url)

    def post(self, url: str, body: dict[str, Any]) -> Answer:
        return self.request("POST", url, body)

    def within_budget(self, answer: Answer) -> bool:
        return answer.latency_seconds <= self.budget_seconds

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> HttpProbe:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
