"""Waiting for a workload to roll out, with a deadline, an injected clock and sleeper.

It fails fast when pods of the new revision cannot recover (CrashLoopBackOff, ImagePullBackOff,
ErrImagePull, OOMKilled), naming pod, container, reason and the last lines of its log.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..bundles.selectors import selector_string
from .errors import RolloutFailed, RolloutTimeout
from .health import (
    FAIL_FAST,
    REVISION_ANNOTATION,
    Health,
    Patience,
    PodProblem,
    object_health,
    pod_failures,
    revision_pods,
)

if TYPE_CHECKING:
    from .client import Kube

__all__ = ["REVISION_ANNOTATION", "WaitTiming", "new_revision_pods", "wait_for_rollout"]


@dataclass(frozen=True)
class WaitTiming:
    deadline_seconds: float
    poll_seconds: float = 2.0
    log_lines: int = 20
    patience: Patience = FAIL_FAST  # a deploy waiting on its own rollout fails at the first crash


def new_revision_pods(kube: Kube, workload: dict[str, Any]) -> list[dict[str, Any]]:
    """Pods of the revision being rolled out: the workload's pods (by its selector) that
    health.revision_pods picks (one ReplicaSet list for a Deployment, one pod list)."""
    meta = workload["metadata"]
    namespace = meta["namespace"]
    selector = selector_string((workload.get("spec") or {}).get("selector"))
    replica_sets = (
        kube.list("apps/v1", "ReplicaSet", namespace, selector) if workload["kind"] == "Deployment" else []
    )
    return revision_pods(workload, replica_sets, kube.list("v1", "Pod", namespace, selector))


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
        health = object_health(live)
        if health.state == "healthy":
            return health
        if health.state == "failed":
            raise RolloutFailed(f"{where}: {health.message}")
        # Until the controller has seen the new generation, the "new revision" is still the old one;
        # judging its pods would fail a rollback away from a crash-looping release at once.
        observed = (live.get("status") or {}).get("observedGeneration", 0)
        current = observed >= (live.get("metadata") or {}).get("generation", 0)
        problems = (
            pod_failures(new_revision_pods(kube, live), time.time(), timing.patience) if current else []
        )
        if problems:
            details = "; ".join(_describe(kube, namespace, p, timing.log_lines) for p in problems[:3])
            raise RolloutFailed(f"{where} rollout failed: {details}")
        if health.message != last_message:
            on_progress(f"{where}: {health.message}")
            last_message = health.message
        if clock() >= deadline:
            raise RolloutTimeout(f"{where} not healthy after {timing.deadline_seconds:g}s: {health.message}")
        sleeper(timing.poll_seconds)
