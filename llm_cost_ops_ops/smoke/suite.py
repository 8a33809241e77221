"""The smoke suite of one environment: which checks it runs, and running them in order.

Each check returns a result; none raises, so one broken endpoint never hides the others.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..environments import EnvironmentSpec
from . import checks, monitoring
from .database import check_database
from .endpoints import Endpoints
from .http import HttpProbe
from .results import CheckResult

DESCRIPTIONS = {
    "health": "GET /health answers 200 within the latency budget.",
    "ready": "GET /ready answers 200 within the latency budget.",
    "live": "GET /live answers 200 within the latency budget.",
    "info_version": "GET /info reports the version of the image just deployed.",
    "metrics": "GET /metrics (port 9090) parses as Prometheus text with the HTTP and llm_cost_ops_ families.",
    "read_api": "GET /api/v1/pricing answers (read-only API call).",
    "write_api": "POST /api/v1/usage of one marked smoke-test record is accepted (opt-in).",
    "database": "The application's credentials connect and _sqlx_migrations is at the expected version "
    "with no dirty row.",
    "prometheus_targets": "Prometheus reports the API pods' scrape targets up.",
    "grafana": "Grafana's /api/health is ok.",
}


def check_names(spec: EnvironmentSpec) -> list[str]:
    """The checks an environment runs, in order."""
    names = [*checks.PROBES, "info_version", "metrics", "read_api"]
    if spec.operations.api_writes:
        names.append("write_api")
    names.append("database")
    if spec.monitoring:
        names += ["prometheus_targets", "grafana"]
    return names


@dataclass(frozen=True)
class SmokeTarget:
    endpoints: Endpoints
    expected_version: str | None  # None: the image tag names no version
    dsn: str | None  # the application's DATABASE_URL; None: `dsn_problem` says why
    expected_migration: int | None
    dsn_problem: str = ""


def run_smoke(spec: EnvironmentSpec, target: SmokeTarget, http: HttpProbe) -> list[CheckResult]:
    """Run every check `spec` asks for against `target`; results in `check_names` order."""
    ep = target.endpoints

    def probe(name: str) -> Callable[[], CheckResult]:
        return lambda: checks.check_probe(http, ep.api, name)

    runners: dict[str, Callable[[], CheckResult]] = {
        **{name: probe(name) for name in checks.PROBES},
        "info_version": lambda: checks.check_info_version(http, ep.api, target.expected_version),
        "metrics": lambda: checks.check_metrics(http, ep.metrics),
        "read_api": lambda: checks.check_read_api(http, ep.api),
        "write_api": lambda: checks.check_write_api(http, ep.api),
        "database": lambda: _database(target, http.budget_seconds),
        "prometheus_targets": lambda: monitoring.check_prometheus_targets(http, ep.prometheus or ""),
        "grafana": lambda: monitoring.check_grafana(http, ep.grafana or ""),
    }
    return [runners[name]() for name in check_names(spec)]


def _database(target: SmokeTarget, budget: float) -> CheckResult:
    if target.dsn is None:
        return CheckResult(
            "database",
            False,
            "the application's database credentials",
            target.dsn_problem,
            details={"evaluated": False},
        )
    return check_database(target.dsn, target.expected_migration, connect_timeout=max(budget * 3, 2))
