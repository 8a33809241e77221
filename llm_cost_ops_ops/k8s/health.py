"""How a rollout is judged healthy: the rules kubectl rollout status and Helm use.

Pure functions over the objects' dicts (as the API returns them, camelCase or snake_case keys).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

FAILING_WAITING_REASONS = frozenset(
    {"CrashLoopBackOff", "ImagePullBackOff", "ErrImagePull", "InvalidImageName", "CreateContainerConfigError"}
)
FAILING_TERMINATED_REASONS = frozenset({"OOMKilled"})


@dataclass(frozen=True)
class Health:
    state: Literal["progressing", "healthy", "failed"]
    message: str


@dataclass(frozen=True)
class PodProblem:
    pod: str
    container: str
    reason: str
    restarts: int

    def __str__(self) -> str:
        return f"pod {self.pod} container {self.container}: {self.reason} (restarts {self.restarts})"


def _g(node: Any, *keys: str, default: Any = None) -> Any:
    """Get a field by its API name, accepting the client's snake_case spelling too."""
    for key in keys:
        if not isinstance(node, dict):
            return default
        snake = "".join(f"_{c.lower()}" if c.isupper() else c for c in key)
        node = node.get(key, node.get(snake))
    return default if node is None else node


def deployment_health(deployment: dict[str, Any]) -> Health:
    """Rolled out when observedGeneration >= generation, every replica is updated, no old replicas
    remain and every updated replica is available; failed on ProgressDeadlineExceeded."""
    generation = _g(deployment, "metadata", "generation", default=0)
    status = _g(deployment, "status", default={})
    if _g(status, "observedGeneration", default=0) < generation:
        return Health("progressing", "waiting for the controller to observe the new generation")
    for condition in _g(status, "conditions", default=[]):
        if _g(condition, "type") == "Progressing" and _g(condition, "reason") == "ProgressDeadlineExceeded":
            return Health(
                "failed", f"ProgressDeadlineExceeded: {_g(condition, 'message', default='')}".strip()
            )
    wanted = _g(deployment, "spec", "replicas", default=1)
    updated = _g(status, "updatedReplicas", default=0)
    replicas = _g(status, "replicas", default=0)
    available = _g(status, "availableReplicas", default=0)
    if updated < wanted:
        return Health("progressing", f"{updated} of {wanted} replicas updated")
    if replicas > updated:
        return Health("progressing", f"{replicas - updated} old replicas pending termination")
    if available < updated:
        return Health("progressing", f"{available} of {updated} updated replicas available")
    return Health("healthy", f"{available} replicas rolled out")


def statefulset_health(statefulset: dict[str, Any]) -> Health:
    """Ready when observedGeneration is current, every replica is ready and, with partition 0,
    currentRevision equals updateRevision."""
    generation = _g(statefulset, "metadata", "generation", default=0)
    status = _g(statefulset, "status", default={})
    if _g(status, "observedGeneration", default=0) < generation:
        return Health("progressing", "waiting for the controller to observe the new generation")
    wanted = _g(statefulset, "spec", "replicas", default=1)
    ready = _g(status, "readyReplicas", default=0)
    if ready < wanted:
        return Health("progressing", f"{ready} of {wanted} replicas ready")
    partition = _g(statefulset, "spec", "updateStrategy", "rollingUpdate", "partition", default=0)
    if partition == 0:
        current, update = _g(status, "currentRevision"), _g(status, "updateRevision")
        if current != update:
            return Health("progressing", f"revision {update} rolling out (current {current})")
        if _g(status, "updatedReplicas", default=wanted) < wanted:
            return Health("progressing", "replicas still on the old revision")
    return Health("healthy", f"{ready} replicas ready")


def workload_health(body: dict[str, Any]) -> Health:
    kind = body.get("kind")
    if kind == "Deployment":
        return deployment_health(body)
    if kind == "StatefulSet":
        return statefulset_health(body)
    return Health("healthy", f"{kind} has no rollout to wait for")


def pod_problems(pods: list[dict[str, Any]]) -> list[PodProblem]:
    """Containers that will not recover by waiting: crash loops, image pull errors, OOM kills."""
    problems = []
    for pod in pods:
        name = _g(pod, "metadata", "name", default="?")
        statuses = _g(pod, "status", "initContainerStatuses", default=[]) + _g(
            pod, "status", "containerStatuses", default=[]
        )
        for cs in statuses:
            waiting = _g(cs, "state", "waiting", "reason")
            terminated = _g(cs, "state", "terminated", "reason") or _g(
                cs, "lastState", "terminated", "reason"
            )
            reason = waiting if waiting in FAILING_WAITING_REASONS else None
            if terminated in FAILING_TERMINATED_REASONS:
                reason = f"{reason}, last terminated {terminated}" if reason else f"{terminated}"
            if reason:
                problems.append(
                    PodProblem(name, _g(cs, "name", default="?"), reason, _g(cs, "restartCount", default=0))
                )
    return problems
