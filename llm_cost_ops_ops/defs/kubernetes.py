"""The Kubernetes resource: which cluster, and whether one is configured at all."""

from __future__ import annotations

from typing import TYPE_CHECKING

import dagster as dg
from pydantic import Field

if TYPE_CHECKING:
    from ..k8s.client import Kube


class KubernetesResource(dg.ConfigurableResource):
    """A cluster reached through a kubeconfig (current or per-environment context) or in-cluster."""

    kubeconfig: str = Field(default="", description="kubeconfig path (default: $KUBECONFIG, ~/.kube/config).")
    in_cluster: bool = Field(
        default=False, description="Use the pod's service account (Dagster on Kubernetes)."
    )
    enabled: bool = Field(
        default=True, description="False forces plan mode even where a cluster is configured."
    )
    backoff_initial_seconds: float = Field(default=0.2, description="First retry delay for transient errors.")

    def configured(self) -> bool:
        from ..k8s.client import cluster_configured

        return self.enabled and cluster_configured(self.kubeconfig, self.in_cluster)

    def connect(self, context: str = "") -> Kube:
        """A connection to the cluster; the kubernetes client is imported only here (it is slow)."""
        from ..k8s.client import Kube, load_api_client

        return Kube(
            load_api_client(self.kubeconfig, context, self.in_cluster),
            backoff_initial=self.backoff_initial_seconds,
        )
