"""The Kubernetes resource: which cluster, and whether one was asked for at all.

A connection that cannot be made raises NotConfigured naming the kubeconfig or context; nothing
falls back to planning (plan mode is asked for in run config, `mode: plan`).

Dagster makes the resource afresh for every run (one instance for all its steps under the
in-process executor), so what it keeps lives exactly one run: the discovery of each API server,
shared by every connection the run makes (the deploy, its migration wave, the drift check), and the
drift the run's deploy already measured (defs/drift.py reuses it instead of dry-running again)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import dagster as dg
from pydantic import Field, PrivateAttr

if TYPE_CHECKING:
    from ..k8s.client import Kube
    from ..k8s.drift import DriftReport


class KubernetesResource(dg.ConfigurableResource):
    """A cluster reached through a kubeconfig (current or per-environment context) or in-cluster."""

    kubeconfig: str = Field(default="", description="kubeconfig path (default: $KUBECONFIG, ~/.kube/config).")
    in_cluster: bool = Field(
        default=False, description="Use the pod's service account (Dagster on Kubernetes)."
    )
    enabled: bool = Field(
        default=True,
        description="False refuses every cluster connection (deploys fail; checks are not evaluated).",
    )
    backoff_initial_seconds: float = Field(default=0.2, description="First retry delay for transient errors.")

    # This run's discovery per API server URL, and the drift its deploy measured per environment.
    _discoveries: dict[str, Any] = PrivateAttr(default_factory=dict)
    _measured_drift: dict[str, Any] = PrivateAttr(default_factory=dict)

    def configured(self) -> bool:
        from ..k8s.client import cluster_configured

        return self.enabled and cluster_configured(self.kubeconfig, self.in_cluster)

    def sleep(self, seconds: float) -> None:
        """The pause between retries of a transient API error (a test double overrides it)."""
        time.sleep(seconds)

    def connect(self, context: str = "", *, max_attempts: int = 8, backoff_max: float = 5.0) -> Kube:
        """A connection to the cluster; the kubernetes client is imported only here (it is slow).
        Sensors ask for few, short retries: a tick retries on the next tick, not within itself.

        Raises NotConfigured (one line: the kubeconfig or context tried, what to set)."""
        from ..k8s.client import Kube, load_api_client
        from ..k8s.errors import NotConfigured

        if not self.enabled:
            raise NotConfigured(
                "the kubernetes resource is disabled (enabled: false): no cluster is reached; plan "
                "with mode: plan (jobs/deploy/<env>.plan.yaml)"
            )

        from ..k8s.discovery import Discovery

        api_client = load_api_client(self.kubeconfig, context, self.in_cluster)
        return Kube(
            api_client,
            sleeper=self.sleep,
            max_attempts=max_attempts,
            backoff_initial=self.backoff_initial_seconds,
            backoff_max=backoff_max,
            discovery=self._discoveries.setdefault(api_client.configuration.host, Discovery()),
        )

    def remember_drift(self, report: DriftReport) -> None:
        """Keep the drift this run's deploy measured, for the run's drift check."""
        self._measured_drift[report.environment] = report

    def measured_drift(self, environment: str, revision: int, digest: str) -> DriftReport | None:
        """The drift this run's deploy measured for `environment`'s release `revision` (with
        `digest`), or None when this run did not deploy that release."""
        report = self._measured_drift.get(environment)
        if report is None or (report.revision, report.digest) != (revision, digest):
            return None
        return report
