"""Deployment and ReplicaSet controllers: one ReplicaSet per pod template, rolling updates
within maxSurge/maxUnavailable (or Recreate), and the status kube-controller-manager writes."""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from datetime import datetime, timedelta

from .cluster import (
    Cluster,
    condition,
    is_ready,
    owned_by,
    owner_reference,
    pod_from_template,
    template_hash,
    without_zeros,
)

MANAGER = "kube-controller-manager"
REVISION = "deployment.kubernetes.io/revision"
HASH_LABEL = "pod-template-hash"

Failures = Callable[[str, str, str], "str | None"]


def _resolve(value: object, desired: int, round_up: bool) -> int:
    if isinstance(value, str) and value.endswith("%"):
        exact = desired * int(value[:-1]) / 100
        return math.ceil(exact) if round_up else math.floor(exact)
    return int(value or 0)  # type: ignore[call-overload]


def _revision(obj: dict) -> int:
    return int((obj["metadata"].get("annotations") or {}).get(REVISION, 0))


def _replicas(obj: dict) -> int:
    return (obj.get("spec") or {}).get("replicas", 1)


def _scale(cluster: Cluster, replica_set: dict, replicas: int) -> None:
    if _replicas(replica_set) != replicas:
        updated = copy.deepcopy(replica_set)
        updated["spec"]["replicas"] = replicas
        cluster.update(updated, MANAGER)


def _new_replica_set(deployment: dict, hash_: str, revision: int, replicas: int) -> dict:
    spec = deployment["spec"]
    template = copy.deepcopy(spec["template"])
    template.setdefault("metadata", {}).setdefault("labels", {})[HASH_LABEL] = hash_
    selector = copy.deepcopy(spec.get("selector") or {})
    selector.setdefault("matchLabels", {})[HASH_LABEL] = hash_
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "name": f"{deployment['metadata']['name']}-{hash_}",
            "namespace": deployment["metadata"]["namespace"],
            "labels": dict(template["metadata"]["labels"]),
            "annotations": {REVISION: str(revision)},
            "ownerReferences": [owner_reference(deployment)],
        },
        "spec": {"replicas": replicas, "selector": selector, "template": template},
    }


def _target_sizes(
    deployment: dict, new_size: int, new_pods: list[dict], old: list[dict], pods: list[dict]
) -> tuple[int, dict]:
    """The next size of the new ReplicaSet and of each old one, one rolling step further."""
    spec, desired = deployment["spec"], _replicas(deployment)
    old_sizes = {rs["metadata"]["name"]: _replicas(rs) for rs in old}
    strategy = spec.get("strategy") or {}
    if spec.get("paused"):
        return new_size, old_sizes
    if strategy.get("type") == "Recreate":
        if any(old_sizes.values()) or any(owned_by(pods, rs) for rs in old):
            return 0, dict.fromkeys(old_sizes, 0)
        return desired, old_sizes
    rolling = strategy.get("rollingUpdate") or {}
    surge = _resolve(rolling.get("maxSurge", "25%"), desired, round_up=True)
    unavailable = _resolve(rolling.get("maxUnavailable", "25%"), desired, round_up=False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    new_size = min(new_size, desired)
    room = desired + surge - sum(old_sizes.values()) - new_size
    if new_size < desired and room > 0:
        new_size += min(room, desired - new_size)
    ready_total = sum(map(is_ready, new_pods))
    ready_total += sum(is_ready(pod) for rs in old for pod in owned_by(pods, rs))
    removable = max(ready_total - (desired - unavailable), 0)
    for rs in sorted(old, key=_revision):
        size = old_sizes[rs["metadata"]["name"]]
        unready = max(size - sum(is_ready(pod) for pod in owned_by(pods, rs)), 0)
        cut = min(size, unready + removable)
        removable -= max(cut - unready, 0)
        old_sizes[rs["metadata"]["name"]] = size - cut
    return new_size, old_sizes


def _deployment(
    cluster: Cluster, deployment: dict, replica_sets: list, pods: list, failures, progress
) -> None:
    meta, spec = deployment["metadata"], deployment["spec"]
    namespace, name = meta["namespace"], meta["name"]
    hash_ = template_hash(spec["template"])
    owned = owned_by(replica_sets, deployment)
    new_rs = next((rs for rs in owned if rs["metadata"]["labels"].get(HASH_LABEL) == hash_), None)
    old = [rs for rs in owned if rs is not new_rs]
    new_pods = owned_by(pods, new_rs) if new_rs else []
    current = _replicas(new_rs) if new_rs else 0
    new_size, old_sizes = _target_sizes(deployment, current, new_pods, old, pods)
    revision = _revision(new_rs) if new_rs else 1 + max(map(_revision, owned), default=0)
    if new_rs is None:
        created = cluster.create(_new_replica_set(deployment, hash_, revision, new_size), MANAGER)
        if created is None:
            return
        new_rs = created
        message = f"Scaled up replica set {created['metadata']['name']} to {new_size}"
        cluster.event(
            deployment, "ScalingReplicaSet", message, warning=False, component="deployment-controller"
        )
    else:
        _scale(cluster, new_rs, new_size)
    for rs in old:
        _scale(cluster, rs, old_sizes[rs["metadata"]["name"]])
    retired = [rs for rs in sorted(old, key=_revision) if not _replicas(rs) and not owned_by(pods, rs)]
    for rs in retired[: max(len(retired) - spec.get("revisionHistoryLimit", 10), 0)]:
        cluster.delete(rs)
    mode = failures("Deployment", namespace, name)
    if mode:
        cluster.owner_modes[("ReplicaSet", namespace, new_rs["metadata"]["name"])] = mode
    if (meta.get("annotations") or {}).get(REVISION) != str(revision):
        annotated = copy.deepcopy(deployment)
        annotated["metadata"].setdefault("annotations", {})[REVISION] = str(revision)
        deployment = cluster.update(annotated, MANAGER) or deployment
    cluster.set_status(
        deployment, _status(cluster, deployment, new_rs, new_pods, old, pods, mode, progress), MANAGER
    )


def _status(cluster, deployment, new_rs, new_pods, old, pods, mode, progress) -> dict:
    meta, spec = deployment["metadata"], deployment["spec"]
    desired = _replicas(deployment)
    all_pods = new_pods + [pod for rs in old for pod in owned_by(pods, rs)]
    ready = sum(map(is_ready, all_pods))
    updated = len(new_pods)
    complete = updated == desired and len(all_pods) == desired and ready == desired
    rolling = (spec.get("strategy") or {}).get("rollingUpdate") or {}
    min_available = desired - _resolve(rolling.get("maxUnavailable", "25%"), desired, round_up=False)
    rs_name = new_rs["metadata"]["name"]
    now, previous = cluster.now(), (deployment.get("status") or {}).get("conditions") or []
    signature = (rs_name, updated, ready, len(all_pods))
    key = (meta["namespace"], meta["name"])
    if progress.get(key, (None,))[0] != signature:
        progress[key] = (signature, cluster.clock())
    stalled_since: datetime = progress[key][1]
    deadline = timedelta(seconds=spec.get("progressDeadlineSeconds", 600))
    if not complete and (mode == "progress-deadline" or cluster.clock() - stalled_since > deadline):
        progressing = (
            False,
            "ProgressDeadlineExceeded",
            f'ReplicaSet "{rs_name}" has timed out progressing.',
        )
    elif complete:
        progressing = (True, "NewReplicaSetAvailable", f'ReplicaSet "{rs_name}" has successfully progressed.')
    else:
        progressing = (True, "ReplicaSetUpdated", f'ReplicaSet "{rs_name}" is progressing.')
    if ready >= min_available:
        available = (True, "MinimumReplicasAvailable", "Deployment has minimum availability.")
    else:
        available = (False, "MinimumReplicasUnavailable", "Deployment does not have minimum availability.")
    conditions = [
        condition(previous, "Available", *available, now),
        condition(previous, "Progressing", *progressing, now),
    ]
    counters = without_zeros(
        {
            "replicas": len(all_pods),
            "updatedReplicas": updated,
            "readyReplicas": ready,
            "availableReplicas": ready,
            "unavailableReplicas": max(desired - ready, 0),
        }
    )
    return {"observedGeneration": meta["generation"], **counters, "conditions": conditions}


def reconcile_deployments(cluster: Cluster, failures: Failures, progress: dict) -> None:
    replica_sets = cluster.list("apps/v1", "ReplicaSet")
    pods = cluster.list("v1", "Pod")
    for deployment in cluster.list("apps/v1", "Deployment"):
        _deployment(cluster, deployment, replica_sets, pods, failures, progress)


def reconcile_replica_sets(cluster: Cluster, failures: Failures) -> None:
    """Keep each ReplicaSet's pod count at spec.replicas and report what it sees."""
    pods = cluster.list("v1", "Pod")
    for replica_set in cluster.list("apps/v1", "ReplicaSet"):
        meta = replica_set["metadata"]
        mode = failures("ReplicaSet", meta["namespace"], meta["name"])
        if mode:
            cluster.owner_modes[("ReplicaSet", meta["namespace"], meta["name"])] = mode
        mine = owned_by(pods, replica_set)
        desired = _replicas(replica_set)
        template = replica_set["spec"].get("template") or {}
        while len(mine) < desired:
            pod = pod_from_template(replica_set, template, f"{meta['name']}-{cluster.suffix()}", {})
            created = cluster.create(pod, MANAGER)
            if created is None:
                break
            mine.append(created)
        surplus = len(mine) - desired
        if surplus > 0:
            # Unready pods go first, then the newest, as the real controller ranks them.
            newest_first = sorted(mine, key=lambda p: p["metadata"]["creationTimestamp"], reverse=True)
            ranked = sorted(newest_first, key=is_ready)
            doomed = ranked[:surplus]
            for pod in doomed:
                cluster.delete(pod)
            mine = [pod for pod in mine if pod not in doomed]
        ready = sum(map(is_ready, mine))
        status = {"replicas": len(mine), "observedGeneration": meta["generation"]}
        status.update(
            without_zeros(
                {"fullyLabeledReplicas": len(mine), "readyReplicas": ready, "availableReplicas": ready}
            )
        )
        cluster.set_status(replica_set, status, MANAGER)
