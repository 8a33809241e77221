"""The order a bundle is applied in: waves, as data.

Each object goes to the first wave (in MATCH_ORDER) whose kinds and component match it; waves are
applied in WAVES order. A wave with `wait` waits for its workloads to become healthy; a wave with a
`hook` runs that hook (the migration step) instead of applying objects.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

COMPONENT_LABEL = "app.kubernetes.io/component"


@dataclass(frozen=True)
class Wave:
    name: str
    kinds: frozenset[str] = field(default_factory=frozenset)
    component: str | None = None
    wait: bool = False
    hook: str | None = None
    any_component: frozenset[str] = field(default_factory=frozenset)  # kinds taken whatever their label

    def matches(self, body: dict[str, Any]) -> bool:
        if body.get("kind") in self.any_component:
            return True
        if body.get("kind") not in self.kinds:
            return False
        if self.component is None:
            return True
        labels = (body.get("metadata") or {}).get("labels") or {}
        return labels.get(COMPONENT_LABEL) == self.component


def _kinds(*names: str) -> frozenset[str]:
    return frozenset(names)


NAMESPACE = Wave("namespace", _kinds("Namespace"))
IDENTITY = Wave(
    "identity", _kinds("ServiceAccount", "Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding")
)
CONFIG = Wave("config", _kinds("ConfigMap", "Secret"))
STORAGE = Wave("storage", _kinds("PersistentVolumeClaim"))
SERVICES = Wave("services", _kinds("Service"))
DATABASE = Wave("database", _kinds("StatefulSet"), component="database", wait=True)
MIGRATIONS = Wave("migrations", hook="migrate")
# The monitoring workloads (by their component label) and every Prometheus-operator object.
MONITORING = Wave(
    "monitoring",
    _kinds("Deployment", "StatefulSet"),
    component="monitoring",
    wait=True,
    any_component=_kinds("ServiceMonitor", "PodMonitor", "PrometheusRule"),
)
API = Wave("api", _kinds("Deployment", "StatefulSet", "DaemonSet"), wait=True)
POLICY = Wave(
    "traffic-and-policy", _kinds("HorizontalPodAutoscaler", "PodDisruptionBudget", "Ingress", "NetworkPolicy")
)
LAST = Wave("other", frozenset())

WAVES: tuple[Wave, ...] = (
    NAMESPACE,
    IDENTITY,
    CONFIG,
    STORAGE,
    SERVICES,
    DATABASE,
    MIGRATIONS,
    API,
    POLICY,
    MONITORING,
    LAST,
)
# The database and monitoring waves claim their workloads before the API wave's broader match.
MATCH_ORDER: tuple[Wave, ...] = (
    NAMESPACE,
    IDENTITY,
    CONFIG,
    STORAGE,
    SERVICES,
    DATABASE,
    MONITORING,
    API,
    POLICY,
)
WORKLOAD_KINDS = frozenset({"Deployment", "StatefulSet", "DaemonSet"})


def wave_of(body: dict[str, Any]) -> Wave:
    return next((wave for wave in MATCH_ORDER if wave.matches(body)), LAST)


def plan_waves(bodies: Iterable[dict[str, Any]]) -> list[tuple[Wave, list[dict[str, Any]]]]:
    """Every wave in order with its objects (hook waves have none; empty waves are kept)."""
    grouped: dict[str, list[dict[str, Any]]] = {wave.name: [] for wave in WAVES}
    for body in bodies:
        grouped[wave_of(body).name].append(body)
    return [(wave, grouped[wave.name]) for wave in WAVES]


# Kinds prune may delete, and the ones it deletes only when the run config confirms them. Namespaces
# are never pruned (teardown removes them, with confirmation), so a deploy never lists namespaces
# cluster-wide and its service account needs no cluster-wide list permission.
PRUNABLE_KINDS: tuple[tuple[str, str], ...] = (
    ("networking.k8s.io/v1", "NetworkPolicy"),
    ("networking.k8s.io/v1", "Ingress"),
    ("policy/v1", "PodDisruptionBudget"),
    ("autoscaling/v2", "HorizontalPodAutoscaler"),
    ("apps/v1", "Deployment"),
    ("apps/v1", "StatefulSet"),
    ("v1", "Service"),
    ("v1", "ConfigMap"),
    ("v1", "Secret"),
    ("v1", "PersistentVolumeClaim"),
    ("rbac.authorization.k8s.io/v1", "RoleBinding"),
    ("rbac.authorization.k8s.io/v1", "Role"),
    ("v1", "ServiceAccount"),
    ("monitoring.coreos.com/v1", "ServiceMonitor"),
)
PROTECTED_KINDS = frozenset({"PersistentVolumeClaim", "Namespace", "Secret"})
