"""Detecting failed rollouts from listed workloads and pods: pure functions, no API calls.

A Deployment or StatefulSet has failed when:
- its Progressing condition says ProgressDeadlineExceeded;
- a pod of its newest revision is in CrashLoopBackOff or was OOMKilled with at least `restarts`
  restarts, is in ImagePullBackOff or InvalidImageName, or has been in ErrImagePull for longer than
  the grace period (the first pull of a new tag may fail once);
- a StatefulSet has not been ready for longer than its deadline;
- a Deployment has had more unavailable replicas than its maxUnavailable for longer than the grace
  period.
Conditions with a duration are timed from when a sensor tick first saw them (`since`, kept in the
sensor's cursor). Each failure carries a dedupe key: environment, object and revision, so one
failure leads to one remediation however often it is seen.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .health import (
    REVISION_ANNOTATION,
    Patience,
    deployment_health,
    pod_failures,
    revision_pods,
    statefulset_health,
)

__all__ = ["RolloutFailure", "Thresholds", "judge", "needs_pods", "pod_failure", "revision_pods"]


@dataclass(frozen=True)
class Thresholds:
    restarts: int = 3
    grace_seconds: float = 120.0
    statefulset_deadline_seconds: float = 600.0

    @property
    def patience(self) -> Patience:
        return Patience(self.restarts, self.grace_seconds)


@dataclass(frozen=True)
class RolloutFailure:
    environment: str
    kind: str
    namespace: str
    name: str
    revision: str
    reason: str
    message: str

    @property
    def ref(self) -> str:
        return f"{self.kind}/{self.namespace}/{self.name}"

    @property
    def key(self) -> str:
        """Environment, object and revision: the same failure keeps the same key across ticks."""
        return f"{self.environment}:{self.ref}@{self.revision}"


@dataclass
class Verdict:
    failure: RolloutFailure | None = None
    pending: dict[str, float] = field(default_factory=dict)  # conditions being timed, for the cursor


def _meta(body: dict[str, Any]) -> dict[str, Any]:
    return body.get("metadata") or {}


def revision_of(workload: dict[str, Any]) -> str:
    """Deployment: its revision annotation; StatefulSet: status.updateRevision; else the generation."""
    if workload.get("kind") == "StatefulSet":
        revision = (workload.get("status") or {}).get("updateRevision")
    else:
        revision = (_meta(workload).get("annotations") or {}).get(REVISION_ANNOTATION)
    return str(revision or f"generation-{_meta(workload).get('generation', 0)}")


def _unavailable_allowed(deployment: dict[str, Any]) -> int:
    spec = deployment.get("spec") or {}
    replicas = int(spec.get("replicas", 1))
    strategy = spec.get("strategy") or {}
    if strategy.get("type") == "Recreate":
        return replicas
    value = (strategy.get("rollingUpdate") or {}).get("maxUnavailable", "25%")
    if isinstance(value, str) and value.endswith("%"):
        return math.floor(replicas * int(value[:-1]) / 100)
    return int(value)


def _observed(workload: dict[str, Any]) -> bool:
    # Until the controller observes a new generation, the revision fields name the previous one.
    status = workload.get("status") or {}
    return int(status.get("observedGeneration") or 0) >= int(_meta(workload).get("generation") or 0)


def needs_pods(workload: dict[str, Any]) -> bool:
    """Whether judging the workload needs its pods: not when healthy, nor when its conditions
    already say it failed, nor before the controller has observed its latest generation."""
    if not _observed(workload):
        return False
    if workload.get("kind") == "StatefulSet":
        return statefulset_health(workload).state != "healthy"
    health = deployment_health(workload)
    unavailable = int((workload.get("status") or {}).get("unavailableReplicas") or 0)
    return health.state == "progressing" or (health.state == "healthy" and unavailable > 0)


def pod_failure(pod: dict[str, Any], now: float, thresholds: Thresholds) -> tuple[str, str] | None:
    """(reason, message) when a container of the pod will not recover by waiting, as the one
    judge (health.pod_failures) decides at the sensor's patience."""
    problems = pod_failures([pod], now, thresholds.patience)
    if not problems:
        return None
    problem = problems[0]
    where = f"pod {problem.pod} container {problem.container}"
    cause = problem.cause
    if cause in ("OOMKilled", "CrashLoopBackOff"):
        return cause, f"{where}: {cause}, {problem.restarts} restarts"
    if cause == "ErrImagePull":
        return cause, f"{where}: ErrImagePull for over {thresholds.grace_seconds:g}s ({problem.image or '?'})"
    return cause, f"{where}: {cause} ({problem.image or '?'})"


def judge(
    environment: str,
    workload: dict[str, Any],
    pods: list[dict[str, Any]] | None,
    now: float,
    since: Mapping[str, float],
    thresholds: Thresholds,
) -> Verdict:
    """Whether one workload has failed; `pods` are its newest revision's (None when not listed)."""
    meta, kind = _meta(workload), str(workload.get("kind"))
    revision = revision_of(workload)

    def failure(reason: str, message: str) -> RolloutFailure:
        return RolloutFailure(
            environment, kind, meta.get("namespace", ""), meta.get("name", ""), revision, reason, message
        )

    verdict = Verdict()
    if not _observed(workload):
        return verdict

    def timed(rule: str, limit: float) -> float | None:
        key = f"{failure('', '').key}:{rule}"
        started = since.get(key, now)
        verdict.pending[key] = started
        return now - started if now - started >= limit else None

    if kind == "Deployment":
        health = deployment_health(workload)
        if health.state == "failed":
            verdict.failure = failure("ProgressDeadlineExceeded", health.message)
            return verdict
    for pod in pods or []:
        found = pod_failure(pod, now, thresholds)
        if found:
            verdict.failure = failure(*found)
            return verdict
    status = workload.get("status") or {}
    if kind == "StatefulSet":
        health = statefulset_health(workload)
        if health.state != "healthy":
            waited = timed("not-ready", thresholds.statefulset_deadline_seconds)
            if waited is not None:
                verdict.failure = failure(
                    "StatefulSetNotReady", f"not ready for {waited:.0f}s: {health.message}"
                )
    else:
        unavailable, allowed = int(status.get("unavailableReplicas") or 0), _unavailable_allowed(workload)
        if unavailable > allowed:
            waited = timed("unavailable", thresholds.grace_seconds)
            if waited is not None:
                message = f"{unavailable} replicas unavailable (maxUnavailable {allowed}) for {waited:.0f}s"
                verdict.failure = failure("UnavailableReplicas", message)
    return verdict
