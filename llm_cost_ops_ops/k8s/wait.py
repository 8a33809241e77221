"""Waiting for a workload to roll out, with a deadline, an injected clock and sleeper.

It fails fast when pods of the new revision cannot recover (CrashLoopBackOff, ImagePullBackOff,
ErrImagePull, OOMKilled), naming pod, container, reason and the last lines of its log.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .errors import RolloutFailed, RolloutTimeout
from .health import Health, PodProblem, pod_problems, workload_health

if TYPE_CHECKING:
    from .client import Kube

REVISION_ANNOTATION = "deployment.kubernetes.io/revision"


@dataclass(frozen=True)
class WaitTiming:
    deadline_seconds: float
    poll_seconds: float = 2.0
    log_lines: int = 20


def _selector(body: dict[str, Any]) -> str:
    labels = ((body.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def new_revision_pods(kube: Kube, workload: dict[str, Any]) -> list[dict[str, Any]]:
    """Pods of the revision being rolled out (Deployment: the ReplicaSet carrying the Deployment's
    revision; StatefulSet: status.updateRevision)."""
    meta = workload["metadata"]
    namespace, selector = meta["namespace"], _selector(workload)
    if workload["kind"] == "StatefulSet":
        revision = (workload.get("status") or {}).get("updateRevision")
        if not revision:
            return []
        return kube.list("v1", "Pod", namespace, f"{selector},controller-revision-hash={revision}")
    revision = (meta.get("annotations") or {}).get(REVISION_ANNOTATION)
    owned = [
        rs
        for rs in kube.list("apps/v1", "ReplicaSet", namespace, selector)
        if any(o.get("uid") == meta.get("uid") for o in rs["metadata"].get("ownerReferences") or [])
    ]
    if not owned:
        return []
    current = [
        rs for rs in owned if (rs["metadata"].get("annotations") or {}).get(REVISION_ANNOTATION) == revision
    ]
    newest = (
        current[0]
        if current
        else max(
            owned, key=lambda rs: int((rs["metadata"].get("annotations") or {}).get(REVISION_ANNOTATION, 0))
        )
    )
    template_hash = (newest["metadata"].get("labels") or {}).get("pod-template-hash")
    if not template_hash:
        return []
    return kube.list("v1", "Pod", namespace, f"{selector},pod-template-hash={template_hash}")


def _describe(kube: Kube, namespace: str, problem: PodProblem, lines: int) -> str:
    log = kube.read_pod_log(namespace, problem.pod, problem.container, lines)
    return f"{problem}; last log lines: {log.tail(lines)}"


def wait_for_rollout(
    kube: Kube,
    workload: dict[str, Any],
    timing: WaitTiming,
    *,
    clock: Callable[[], float] = time.monotonic,
    sleeper: Callable[[float], None] = time.sleep,
    on_progress: Callable[[str], None] = lambda _: None,
) -> Health:
    """Poll a Deployment or StatefulSet until it is healthy.

    Raises RolloutFailed (ProgressDeadlineExceeded, failing pods) or RolloutTimeout (deadline).
    """
    kind, meta = workload["kind"], workload["metadata"]
    namespace, name = meta["namespace"], meta["name"]
    where = f"{kind} {namespace}/{name}"
    deadline = clock() + timing.deadline_seconds
    last_message = ""
    while True:
        live = kube.get(workload["apiVersion"], kind, name, namespace)
        if live is None:
            raise RolloutFailed(f"{where} disappeared while waiting for its rollout")
        health = workload_health(live)
        if health.state == "healthy":
            return health
        if health.state == "failed":
            raise RolloutFailed(f"{where}: {health.message}")
        # Until the controller has seen the new generation, the "new revision" is still the old one;
        # judging its pods would fail a rollback away from a crash-looping release at once.
        observed = (live.get("status") or {}).get("observedGeneration", 0)
        current = observed >= (live.get("metadata") or {}).get("generation", 0)
        problems = pod_problems(new_revision_pods(kube, live)) if current else []
        if problems:
            details = "; ".join(_describe(kube, namespace, p, timing.log_lines) for p in problems[:3])
            raise RolloutFailed(f"{where} rollout failed: {details}")
        if health.message != last_message:
            on_progress(f"{where}: {health.message}")
            last_message = health.message
        if clock() >= deadline:
            raise RolloutTimeout(f"{where} not healthy after {timing.deadline_seconds:g}s: {health.message}")
        sleeper(timing.poll_seconds)
