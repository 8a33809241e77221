"""Which cluster a connection reaches, and the refusal to write anywhere else.

A cluster's identity is the UID of its `kube-system` namespace (stable for the cluster's life,
different for every cluster, readable with the namespaces' read rights), with the API server's URL
for the message. Every write path (deploy, rollback, heal, teardown, migrations) compares it with the
identity its environment expects: the spec's `deploy.cluster_id`, else the one recorded with the
environment's releases (in the ledger and in Dagster), and refuses on a mismatch, before any write.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from .errors import KubernetesError

if TYPE_CHECKING:
    from .client import Kube


class WrongCluster(KubernetesError):
    """The connection reaches a cluster that is not the environment's."""


@dataclass(frozen=True)
class ClusterIdentity:
    uid: str
    server: str

    def __str__(self) -> str:
        return f"{self.uid} ({self.server})"


def cluster_identity(kube: Kube) -> ClusterIdentity:
    """The connected cluster's identity. Raises ApiError when kube-system cannot be read."""
    namespace = kube.get("v1", "Namespace", "kube-system") or {}
    uid = (namespace.get("metadata") or {}).get("uid") or ""
    return ClusterIdentity(f"kube-system:{uid}" if uid else "unknown", kube.api_client.configuration.host)


def check_cluster(environment: str, connected: ClusterIdentity, expected: str, where: str) -> None:
    """Raise WrongCluster unless `connected` is `expected` (an empty `expected` accepts any)."""
    if expected and connected.uid != expected:
        raise WrongCluster(
            f"{environment}: refusing to write: connected to cluster {connected}, but {environment} runs "
            f"on cluster {expected} ({where}); point KUBECONFIG or deploy.kube_context at "
            f"{environment}'s cluster"
        )
