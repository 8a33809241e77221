"""Posting notifications: httpx with bounded retries (tenacity) on transient failures only.

Webhook URLs are secrets (a Slack incoming-webhook URL is its own credential): errors name the
destination's kind and host, never its URL.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

import tenacity

if TYPE_CHECKING:
    import httpx

from ..errors import OpsError
from .message import Notice, slack_payload, webhook_payload

TRANSIENT_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})


class NotificationFailed(OpsError):
    """A notification could not be delivered; names the destination's kind and host."""


class _Transient(Exception):
    pass


@dataclass(frozen=True)
class Destination:
    url: str
    format: Literal["webhook", "slack"] = "webhook"

    def describe(self) -> str:
        return f"{self.format} destination at {urlsplit(self.url).hostname or '?'}"

    def payload(self, notice: Notice) -> dict[str, Any]:
        return slack_payload(notice) if self.format == "slack" else webhook_payload(notice)


class Notifier:
    """Sends one notice to every destination; each is retried on its own."""

    def __init__(
        self,
        destinations: list[Destination],
        *,
        timeout_seconds: float = 5.0,
        max_attempts: int = 4,
        backoff_initial: float = 0.5,
        backoff_max: float = 8.0,
        sleeper: Callable[[float], None] = time.sleep,
        transport: httpx.BaseTransport | None = None,
    ):
        self.destinations = [d for d in destinations if d.url]
        import httpx  # here, not at module level: the code location loads without it

        self._client = httpx.Client(timeout=timeout_seconds, transport=transport)
        self._retrying = tenacity.Retrying(
            sleep=sleeper,
            stop=tenacity.stop_after_attempt(max_attempts),
            wait=tenacity.wait_exponential(multiplier=backoff_initial, max=backoff_max),
            retry=tenacity.retry_if_exception_type((_Transient, httpx.TransportError)),
            reraise=True,
        )
        self.max_attempts = max_attempts

    def _post(self, destination: Destination, body: dict[str, Any]) -> None:
        response = self._client.post(destination.url, json=body)
        if response.status_code in TRANSIENT_STATUS:
            raise _Transient(f"HTTP {response.status_code}")
        if response.status_code >= 400:
            raise NotificationFailed(
                f"{destination.describe()} refused the message: HTTP {response.status_code}"
            )

    def send(self, notice: Notice) -> int:
        import httpx

        """Deliver `notice` everywhere; returns how many destinations took it.

        Raises NotificationFailed (after the others were tried) when any destination did not."""
        failures = []
        for destination in self.destinations:
            try:
                self._retrying(self._post, destination, destination.payload(notice))
            except NotificationFailed as exc:
                failures.append(str(exc))
            except _Transient as exc:
                failures.append(f"{destination.describe()}: {exc} after {self.max_attempts} attempts")
            except httpx.TransportError as exc:
                # The exception's text may carry the URL, which is the secret: only its type.
                failures.append(
                    f"{destination.describe()}: {type(exc).__name__} after {self.max_attempts} attempts"
                )
        if failures:
            raise NotificationFailed("; ".join(failures))
        return len(self.destinations)

    def close(self) -> None:
        self._client.close()
