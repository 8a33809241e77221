"""One sensor tick's view of an environment: list its workloads, list pods only where needed, judge.

One list request per workload kind (Deployments, StatefulSets) with the bundle's inventory labels;
for a workload that is not healthy, one ReplicaSet list (Deployments) and one Pod list, both by the
workload's selector. Raw JSON lists (`Kube.list_json`): no discovery, no model conversion.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..bundles.selectors import selector_string
from .detect import RolloutFailure, Thresholds, judge, needs_pods, revision_pods
from .inventory import inventory_selector

if TYPE_CHECKING:
    from .client import Kube

WORKLOAD_LISTS = (("apps/v1", "deployments"), ("apps/v1", "statefulsets"))


@dataclass
class Scan:
    failures: list[RolloutFailure] = field(default_factory=list)
    pending: dict[str, float] = field(default_factory=dict)
    workloads: int = 0
    inspected: list[str] = field(default_factory=list)  # workloads whose pods were listed


def scan_rollouts(
    kube: Kube,
    environment: str,
    namespace: str,
    thresholds: Thresholds,
    now: float,
    since: Mapping[str, float],
) -> Scan:
    """Judge every Deployment and StatefulSet of the environment. Raises ApiError."""
    scan = Scan()
    selector = inventory_selector(environment)
    for api_version, plural in WORKLOAD_LISTS:
        for workload in kube.list_json(api_version, plural, namespace, selector):
            scan.workloads += 1
            pods = None
            if needs_pods(workload):
                meta = workload["metadata"]
                scan.inspected.append(f"{workload['kind']}/{namespace}/{meta['name']}")
                by_selector = selector_string((workload.get("spec") or {}).get("selector"))
                replica_sets = (
                    kube.list_json("apps/v1", "replicasets", namespace, by_selector)
                    if workload["kind"] == "Deployment"
                    else []
                )
                pods = revision_pods(
                    workload, replica_sets, kube.list_json("v1", "pods", namespace, by_selector)
                )
            verdict = judge(environment, workload, pods, now, since, thresholds)
            scan.pending.update(verdict.pending)
            if verdict.failure:
                scan.failures.append(verdict.failure)
    return scan
