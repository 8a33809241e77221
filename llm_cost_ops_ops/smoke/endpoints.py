"""Where the smoke tests reach an environment: configured URLs first, then the Service's in-cluster
DNS name when Dagster runs in the cluster, else a port-forward to the Service.

The application's database credentials come from its own Secret (`DATABASE_URL`), so the check
connects as the application does; outside the cluster the DSN's host is replaced by a port-forward
to the database Service.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

from .. import process_env
from ..environments import EnvironmentSpec
from .portforward import Forwarder
from .results import SmokeError

if TYPE_CHECKING:
    from ..k8s.client import Kube

API = ("llm-cost-ops", 8080)
METRICS = ("llm-cost-ops", 9090)
PROMETHEUS = ("prometheus", 9090)
GRAFANA = ("grafana", 3000)
DATABASE = ("postgres", 5432)
APP_SECRET = "llm-cost-ops-secrets"


def running_in_cluster() -> bool:
    return process_env.in_kubernetes_pod()


@dataclass(frozen=True)
class Endpoints:
    api: str
    metrics: str
    prometheus: str | None = None
    grafana: str | None = None


class EndpointResolver:
    """Turns a spec's `operations` URLs, the cluster's service DNS or port-forwards into base URLs."""

    def __init__(self, spec: EnvironmentSpec, *, inside_cluster: bool, forwarder: Forwarder | None):
        self.spec, self.inside_cluster, self.forwarder = spec, inside_cluster, forwarder

    def address(self, service: str, port: int, field: str) -> tuple[str, int]:
        if self.inside_cluster:
            return f"{service}.{self.spec.namespace}.svc", port
        if self.forwarder is None:
            raise SmokeError(
                f"{self.spec.name}: no operations.{field} in environments.yaml and no cluster "
                f"connection to port-forward Service {service}:{port} through"
            )
        return self.forwarder.forward(self.spec.namespace, service, port)

    def url(self, configured: str | None, service: str, port: int, field: str) -> str:
        if configured:
            return configured.rstrip("/")
        host, local = self.address(service, port, field)
        return f"http://{host}:{local}"

    def endpoints(self) -> Endpoints:
        ops = self.spec.operations
        monitoring = self.spec.monitoring
        return Endpoints(
            api=self.url(ops.base_url, *API, "base_url"),
            metrics=self.url(ops.metrics_url, *METRICS, "metrics_url"),
            prometheus=self.url(ops.prometheus_url, *PROMETHEUS, "prometheus_url") if monitoring else None,
            grafana=self.url(ops.grafana_url, *GRAFANA, "grafana_url") if monitoring else None,
        )

    def application_dsn(self, kube: Kube) -> str:
        """DATABASE_URL from the application's Secret, its host reachable from here.
        Raises SmokeError when the Secret or the key is missing."""
        secret = kube.get("v1", "Secret", APP_SECRET, self.spec.namespace)
        if secret is None:
            raise SmokeError(
                f"{self.spec.name}: Secret {self.spec.namespace}/{APP_SECRET} does not exist "
                "(staging and prod take it from outside the bundle: create it with DATABASE_URL)"
            )
        encoded = (secret.get("data") or {}).get("DATABASE_URL")
        if not encoded:
            raise SmokeError(
                f"{self.spec.name}: Secret {self.spec.namespace}/{APP_SECRET} has no DATABASE_URL"
            )
        dsn = base64.b64decode(encoded).decode()
        if self.inside_cluster or self.spec.database.external:
            return dsn  # an external database is reached at its own address, not port-forwarded
        host, port = self.address(*DATABASE, "database")
        return with_address(dsn, host, port)


def with_address(dsn: str, host: str, port: int) -> str:
    """The DSN with its host and port replaced, credentials and database kept."""
    parts = urlsplit(dsn)
    credentials = parts.netloc.rpartition("@")[0]
    netloc = f"{credentials}@{host}:{port}" if credentials else f"{host}:{port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
