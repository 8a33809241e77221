"""Controllers that only derive state from pods: PVC binding, Service Endpoints and
PodDisruptionBudget status."""

from __future__ import annotations

import math

from .cluster import Cluster, is_ready
from .rollouts import MANAGER
from .selectors import labels_match


def bind_claims(cluster: Cluster) -> None:
    """Every claim binds at once, with the capacity it requested."""
    for claim in cluster.list("v1", "PersistentVolumeClaim"):
        spec = claim.get("spec") or {}
        status = {
            "phase": "Bound",
            "accessModes": spec.get("accessModes") or ["ReadWriteOnce"],
            "capacity": {
                "storage": ((spec.get("resources") or {}).get("requests") or {}).get("storage", "1Gi")
            },
        }
        cluster.set_status(claim, status, "persistentvolume-binder")


def _target_port(port: dict, pods: list[dict]) -> int:
    target = port.get("targetPort", port.get("port"))
    if isinstance(target, int):
        return target
    for pod in pods:
        for container in (pod.get("spec") or {}).get("containers") or []:
            for named in container.get("ports") or []:
                if named.get("name") == target:
                    return named["containerPort"]
    return port.get("port", 0)


def _address(pod: dict) -> dict:
    meta = pod["metadata"]
    return {
        "ip": pod["status"]["podIP"],
        "nodeName": pod["spec"].get("nodeName", "node-1"),
        "targetRef": {
            "kind": "Pod",
            "namespace": meta["namespace"],
            "name": meta["name"],
            "uid": meta["uid"],
        },
    }


def publish_endpoints(cluster: Cluster) -> None:
    """Endpoints for each Service with a selector: ready pod IPs, and the rest as not ready."""
    pods = cluster.list("v1", "Pod")
    for service in cluster.list("v1", "Service"):
        meta, spec = service["metadata"], service.get("spec") or {}
        if not spec.get("selector"):
            continue
        selected = [
            pod
            for pod in pods
            if pod["metadata"]["namespace"] == meta["namespace"]
            and labels_match({"matchLabels": spec["selector"]}, pod["metadata"].get("labels") or {})
            and (pod.get("status") or {}).get("podIP")
        ]
        endpoints: dict = {
            "apiVersion": "v1",
            "kind": "Endpoints",
            "metadata": {
                "name": meta["name"],
                "namespace": meta["namespace"],
                "labels": meta.get("labels") or {},
            },
        }
        if selected:
            subset: dict = {
                "ports": [
                    {
                        "name": p.get("name", ""),
                        "port": _target_port(p, selected),
                        "protocol": p.get("protocol", "TCP"),
                    }
                    for p in spec.get("ports") or []
                ]
            }
            ready = [_address(pod) for pod in selected if is_ready(pod)]
            waiting = [_address(pod) for pod in selected if not is_ready(pod)]
            if ready:
                subset["addresses"] = ready
            if waiting:
                subset["notReadyAddresses"] = waiting
            endpoints["subsets"] = [subset]
        current = cluster.server.read("v1", "Endpoints", meta["name"], meta["namespace"])
        if current is None:
            cluster.create(endpoints, "endpoint-controller")
        elif current.get("subsets") != endpoints.get("subsets"):
            current.pop("subsets", None)
            current.update({k: v for k, v in endpoints.items() if k == "subsets"})
            cluster.update(current, "endpoint-controller")


def _budget(value: object, expected: int) -> int:
    if isinstance(value, str) and value.endswith("%"):
        return math.ceil(expected * int(value[:-1]) / 100)
    return int(value or 0)  # type: ignore[call-overload]


def disruption_budgets(cluster: Cluster) -> None:
    """PodDisruptionBudget status: healthy pods and how many may be disrupted."""
    pods = cluster.list("v1", "Pod")
    for budget in cluster.list("policy/v1", "PodDisruptionBudget"):
        meta, spec = budget["metadata"], budget.get("spec") or {}
        selected = [
            pod
            for pod in pods
            if pod["metadata"]["namespace"] == meta["namespace"]
            and labels_match(spec.get("selector") or {}, pod["metadata"].get("labels") or {})
        ]
        expected, healthy = len(selected), sum(map(is_ready, selected))
        if "minAvailable" in spec:
            desired = _budget(spec["minAvailable"], expected)
        else:
            desired = max(expected - _budget(spec.get("maxUnavailable", 0), expected), 0)
        allowed = max(healthy - desired, 0)
        previous: dict = next(
            (
                c
                for c in (budget.get("status") or {}).get("conditions") or []
                if c.get("type") == "DisruptionAllowed"
            ),
            {},
        )
        state = "True" if allowed else "False"
        since = previous.get("lastTransitionTime") if previous.get("status") == state else cluster.now()
        status = {
            "observedGeneration": meta["generation"],
            "currentHealthy": healthy,
            "desiredHealthy": desired,
            "expectedPods": expected,
            "disruptionsAllowed": allowed,
            "conditions": [
                {
                    "type": "DisruptionAllowed",
                    "status": state,
                    "reason": "SufficientPods" if allowed else "InsufficientPods",
                    "message": "",
                    "observedGeneration": meta["generation"],
                    "lastTransitionTime": since,
                }
            ],
        }
        cluster.set_status(budget, status, MANAGER)
