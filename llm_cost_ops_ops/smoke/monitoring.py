"""Monitoring checks, where an environment deploys it: Prometheus scrapes the API pods, Grafana is up."""

from __future__ import annotations

from .http import HttpProbe
from .results import CheckResult

API_SCRAPE_JOB = "llm-cost-ops-api"  # manifests/monitoring/prometheus-configmap.yaml


def check_prometheus_targets(http: HttpProbe, prometheus_url: str, job: str = API_SCRAPE_JOB) -> CheckResult:
    """Prometheus's `/api/v1/targets` lists the API pods' scrape targets, every one `up`."""
    answer = http.get(f"{prometheus_url}/api/v1/targets?state=active")
    expected = f"at least one active target of job {job}, all up"
    body = answer.json()
    if answer.status != 200 or not isinstance(body, dict):
        return CheckResult(
            "prometheus_targets", False, expected, answer.describe(), answer.latency_seconds, answer.url
        )
    targets = [
        t
        for t in (body.get("data") or {}).get("activeTargets") or []
        if (t.get("labels") or {}).get("job") == job or (t.get("scrapePool") == job)
    ]
    down = [
        f"{(t.get('labels') or {}).get('pod') or t.get('scrapeUrl')}: {t.get('health')} "
        f"{t.get('lastError') or ''}".strip()
        for t in targets
        if t.get("health") != "up"
    ]
    seen = f"{len(targets) - len(down)} of {len(targets)} targets up"
    if down:
        seen += f"; down: {'; '.join(down[:5])}"
    passed = bool(targets) and not down
    details = {"targets": len(targets), "down": len(down)}
    return CheckResult(
        "prometheus_targets", passed, expected, seen, answer.latency_seconds, answer.url, details
    )


def check_grafana(http: HttpProbe, grafana_url: str) -> CheckResult:
    """Grafana's `/api/health` answers 200 with `"database": "ok"`."""
    answer = http.get(f"{grafana_url}/api/health")
    body = answer.json()
    database = body.get("database") if isinstance(body, dict) else None
    passed = answer.status == 200 and database == "ok"
    seen = f"{answer.describe()}, database {database}" if answer.status is not None else answer.describe()
    return CheckResult("grafana", passed, 'HTTP 200, database "ok"', seen, answer.latency_seconds, answer.url)
