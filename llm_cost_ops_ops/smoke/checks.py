"""Checks of the API itself (port 8080) and of its metrics (port 9090, Prometheus text format)."""

from __future__ import annotations

import re
from typing import Any

from .http import Answer, HttpProbe
from .results import CheckResult

PROBES = ("health", "ready", "live")
REQUIRED_FAMILIES = ("http_requests_total", "http_request_duration_seconds")
APP_PREFIX = "llm_cost_ops_"
WRITE_OK = frozenset({200, 201, 202})
_VERSION_TAG = re.compile(r"v?(\d+\.\d+\.\d+(?:[-+][0-9A-Za-z.-]+)?)")


def version_of_image(image: str) -> str | None:
    """The application version an image tag names (`...:1.4.2` -> 1.4.2), or None for tags such as
    `latest` that name no version."""
    reference = image.split("@")[0]
    name, _, tag = reference.rpartition(":")
    if not name or "/" in tag:
        return None
    match = _VERSION_TAG.fullmatch(tag)
    return match.group(1) if match else None


def _timed(
    http: HttpProbe, name: str, answer: Answer, expected: str, ok: bool, seen: str = "", **details: Any
) -> CheckResult:
    """A result that also fails when the answer came later than the budget."""
    in_budget = http.within_budget(answer)
    seen = seen or answer.describe()
    if answer.status is not None and not in_budget:
        seen += f", over the {http.budget_seconds * 1000:.0f} ms budget"
    return CheckResult(
        name, ok and in_budget, expected, seen, answer.latency_seconds, answer.url, dict(details)
    )


def check_probe(http: HttpProbe, base_url: str, name: str) -> CheckResult:
    """`/health`, `/ready` or `/live` answers 200 within the latency budget."""
    answer = http.get(f"{base_url}/{name}")
    body = answer.json()
    details = {"body_status": str(body.get("status"))} if isinstance(body, dict) else {}
    expected = f"HTTP 200 within {http.budget_seconds * 1000:.0f} ms"
    return _timed(http, name, answer, expected, answer.status == 200, **details)


def check_info_version(http: HttpProbe, base_url: str, expected_version: str | None) -> CheckResult:
    """`/info` reports the version of the deployed image (any version when its tag names none)."""
    answer = http.get(f"{base_url}/info")
    body = answer.json()
    version = str(body.get("version")) if isinstance(body, dict) and body.get("version") else None
    if expected_version is None:
        expected = "HTTP 200 with a version (the image tag names no version)"
        ok = answer.status == 200 and version is not None
    else:
        expected = f"version {expected_version}"
        ok = answer.status == 200 and version == expected_version
    seen = f"version {version}" if version else f"no version ({answer.describe()})"
    return _timed(http, "info_version", answer, expected, ok, seen)


def _metric_names(text: str) -> set[str]:
    names: set[str] = set()
    from prometheus_client.parser import text_string_to_metric_families

    for family in text_string_to_metric_families(text):
        names.add(family.name)
        names.update(sample.name for sample in family.samples)
    return names


def check_metrics(http: HttpProbe, metrics_url: str) -> CheckResult:
    """`/metrics` parses as Prometheus text and has the standard HTTP families and the
    application's `llm_cost_ops_` families."""
    answer = http.get(f"{metrics_url}/metrics")
    expected = f"Prometheus text with {', '.join(REQUIRED_FAMILIES)} and {APP_PREFIX}* families"
    if answer.status != 200:
        return CheckResult("metrics", False, expected, answer.describe(), answer.latency_seconds, answer.url)
    try:
        # The parser names a counter family without `_total`; its samples keep it.
        names = _metric_names(answer.text)
    except (ValueError, TypeError, IndexError, KeyError) as exc:
        seen = f"unparseable metrics text: {exc}"[:300]
        return CheckResult("metrics", False, expected, seen, answer.latency_seconds, answer.url)
    missing = [f for f in REQUIRED_FAMILIES if f not in names]
    app = sorted(n for n in names if n.startswith(APP_PREFIX))
    if not app:
        missing.append(f"{APP_PREFIX}*")
    seen = f"{len(names)} metric names" + (f"; missing {', '.join(missing)}" if missing else "")
    return _timed(http, "metrics", answer, expected, not missing, seen, application_metrics=len(app))


def check_read_api(http: HttpProbe, base_url: str) -> CheckResult:
    """A read-only API call, `GET /api/v1/pricing`, answers 200 within the budget."""
    answer = http.get(f"{base_url}/api/v1/pricing")
    return _timed(http, "read_api", answer, "GET /api/v1/pricing: HTTP 200", answer.status == 200)


def check_write_api(http: HttpProbe, base_url: str) -> CheckResult:
    """`POST /api/v1/usage` of one marked smoke-test record is accepted (opt-in per environment)."""
    record = {
        "organization_id": "llm-cost-ops-ops-smoke-test",
        "provider": "openai",
        "model": "gpt-4o-mini",
        "prompt_tokens": 1,
        "completion_tokens": 1,
        "metadata": {"source": "llm-cost-ops-ops smoke test"},
    }
    answer = http.post(f"{base_url}/api/v1/usage", record)
    expected = "POST /api/v1/usage: HTTP 200, 201 or 202"
    return _timed(http, "write_api", answer, expected, answer.status in WRITE_OK)
