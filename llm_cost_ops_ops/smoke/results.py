"""What a smoke check found: passed or not, how long it took, what was expected and what was seen."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import OpsError


class SmokeError(OpsError):
    """A smoke test could not run at all (no endpoint, no credentials, port-forward failed)."""


@dataclass(frozen=True)
class CheckResult:
    name: str
    passed: bool
    expected: str
    seen: str
    latency_seconds: float | None = None
    url: str = ""  # never with credentials
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def status(self) -> str:
        if self.details.get("evaluated") is False:  # it could not run: neither passed nor failed
            return "not evaluated"
        return "passed" if self.passed else "failed"

    def metadata(self) -> dict[str, Any]:
        """Flat metadata for the Dagster UI (latency in milliseconds)."""
        out: dict[str, Any] = {"status": self.status, "expected": self.expected, "seen": self.seen}
        if self.latency_seconds is not None:
            out["latency_ms"] = round(self.latency_seconds * 1000, 1)
        if self.url:
            out["url"] = self.url
        return {**out, **self.details}

    def __str__(self) -> str:
        return f"{self.name}: {self.status} (expected {self.expected}; seen {self.seen})"


def failed(name: str, expected: str, seen: str, **kwargs: Any) -> CheckResult:
    return CheckResult(name, False, expected, seen, **kwargs)
