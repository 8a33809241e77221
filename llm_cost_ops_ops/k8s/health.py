"""The one judge of health and failure: the rules kubectl rollout status, kstatus and Helm use.

Pure functions over the objects' dicts (as the API returns them: camelCase keys).
The deploy's waits, the rollout sensors, teardown and the migration Job all ask this module; they
differ only in their patience (`Patience`: how many restarts, how long an image pull may fail),
never in the rules.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

REVISION_ANNOTATION = "deployment.kubernetes.io/revision"
# A container waiting for one of these will not start by waiting longer.
NOT_STARTING_REASONS = frozenset(
    {"ImagePullBackOff", "InvalidImageName", "CreateContainerConfigError", "CreateContainerError"}
)
FAILING_WAITING_REASONS = NOT_STARTING_REASONS | {"CrashLoopBackOff", "ErrImagePull"}
FAILING_TERMINATED_REASONS = frozenset({"OOMKilled"})


@dataclass(frozen=True)
class Patience:
    """How much a caller tolerates before a pod condition counts as a failure.

    `restarts`: a container in CrashLoopBackOff (or OOMKilled) fails once it restarted this often;
    `pull_grace_seconds`: ErrImagePull fails once the pod is this old (a first pull of a new tag may
    fail once). A deploy waiting on its own rollout fails fast (the first crash, no grace); the sensors
    use the environment's `crashloop_restart_threshold` and `grace_period_seconds`.
    """

    restarts: int = 0
    pull_grace_seconds: float = 0.0


FAIL_FAST = Patience()


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
    image: str = ""

    @property
    def cause(self) -> str:
        """The one reason that names the failure (OOMKilled wins over the back-off it causes)."""
        return "OOMKilled" if "OOMKilled" in self.reason else self.reason.split(",")[0]

    def __str__(self) -> str:
        return f"pod {self.pod} container {self.container}: {self.reason} (restarts {self.restarts})"


def _g(node: Any, *keys: str, default: Any = None) -> Any:
    """Get a nested field by its API (camelCase) names; `default` where any level is missing."""
    for key in keys:
        if not isinstance(node, dict):
            return default
        node = node.get(key)
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


def daemonset_health(daemonset: dict[str, Any]) -> Health:
    """Rolled out when observedGeneration is current and every scheduled pod is updated and
    available (kubectl rollout status daemonset)."""
    generation = _g(daemonset, "metadata", "generation", default=0)
    status = _g(daemonset, "status", default={})
    if _g(status, "observedGeneration", default=0) < generation:
        return Health("progressing", "waiting for the controller to observe the new generation")
    desired = _g(status, "desiredNumberScheduled", default=0)
    updated = _g(status, "updatedNumberScheduled", default=0)
    available = _g(status, "numberAvailable", default=0)
    if updated < desired:
        return Health("progressing", f"{updated} of {desired} pods updated")
    if available < desired:
        return Health("progressing", f"{available} of {desired} updated pods available")
    return Health("healthy", f"{available} pods rolled out")


def job_health(job: dict[str, Any]) -> Health:
    """Complete or Failed as the Job controller's conditions say; running otherwise."""
    for condition in _g(job, "status", "conditions", default=[]):
        if _g(condition, "status") != "True":
            continue
        if _g(condition, "type") == "Complete":
            return Health("healthy", "complete")
        if _g(condition, "type") == "Failed":
            reason, message = _g(condition, "reason", default="Failed"), _g(condition, "message", default="")
            return Health("failed", f"{reason}: {message}".strip(": "))
    return Health("progressing", "running")


def _conditions_health(body: dict[str, Any]) -> Health:
    """kstatus for objects with status conditions (custom resources, HPA): Stalled/Failed True is
    failed, Ready/Available False (or Reconciling True) is progressing, else healthy."""
    generation = _g(body, "metadata", "generation", default=0)
    observed = _g(body, "status", "observedGeneration")
    if observed is not None and observed < generation:
        return Health("progressing", "waiting for the controller to observe the new generation")
    for condition in _g(body, "status", "conditions", default=[]):
        kind, value = _g(condition, "type"), _g(condition, "status")
        message = _g(condition, "message", default="") or _g(condition, "reason", default="")
        if kind in ("Stalled", "Failed") and value == "True":
            return Health("failed", f"{kind}: {message}".strip(": "))
        if (kind in ("Ready", "Available") and value == "False") or (
            kind == "Reconciling" and value == "True"
        ):
            return Health("progressing", f"{kind} {value}: {message}".strip(": "))
    return Health("healthy", "current")


def object_health(body: dict[str, Any]) -> Health:
    """The health of any object a bundle can hold."""
    kind = body.get("kind")
    if kind == "Deployment":
        return deployment_health(body)
    if kind == "StatefulSet":
        return statefulset_health(body)
    if kind == "DaemonSet":
        return daemonset_health(body)
    if kind == "Job":
        return job_health(body)
    if kind == "PersistentVolumeClaim":
        phase = _g(body, "status", "phase", default="Pending")
        if phase == "Lost":
            return Health("failed", "claim lost its volume")
        return Health("healthy", "bound") if phase == "Bound" else Health("progressing", f"claim {phase}")
    if kind == "Service" and _g(body, "spec", "type") == "LoadBalancer":
        if _g(body, "status", "loadBalancer", "ingress", default=[]):
            return Health("healthy", "load balancer ready")
        return Health("progressing", "waiting for a load balancer address")
    if kind == "PodDisruptionBudget":
        observed = _g(body, "status", "observedGeneration", default=0)
        if observed < _g(body, "metadata", "generation", default=0):
            return Health("progressing", "waiting for the disruption controller")
        return Health("healthy", "current")
    if kind in ("Service", "Ingress", "ConfigMap", "Secret", "Namespace", "ServiceAccount") or kind in (
        "Role",
        "RoleBinding",
        "NetworkPolicy",
    ):
        return Health("healthy", "current")
    return _conditions_health(body)


def pod_failures(pods: list[dict[str, Any]], now: float, patience: Patience = FAIL_FAST) -> list[PodProblem]:
    """Containers that will not recover by waiting, at the caller's patience: crash loops and
    OOM kills past `patience.restarts`, image pulls failing past the grace period, containers
    that cannot be created."""
    problems = []
    for pod in pods:
        name = _g(pod, "metadata", "name", default="?")
        age = _age_seconds(pod, now)
        never_restarts = _g(pod, "spec", "restartPolicy") == "Never"
        statuses = _g(pod, "status", "initContainerStatuses", default=[]) + _g(
            pod, "status", "containerStatuses", default=[]
        )
        for cs in statuses:
            waiting = _g(cs, "state", "waiting", "reason")
            now_terminated = _g(cs, "state", "terminated", "reason")
            terminated = now_terminated or _g(cs, "lastState", "terminated", "reason")
            restarts = int(_g(cs, "restartCount", default=0))
            reason = None
            if (
                waiting in NOT_STARTING_REASONS
                or (waiting == "ErrImagePull" and age >= patience.pull_grace_seconds)
                or (waiting == "CrashLoopBackOff" and restarts >= patience.restarts)
            ):
                reason = waiting
            if terminated in FAILING_TERMINATED_REASONS and (
                restarts >= patience.restarts or (never_restarts and now_terminated)
            ):
                reason = f"{reason}, last terminated {terminated}" if reason else f"{terminated}"
            if reason:
                container, image = _g(cs, "name", default="?"), _g(cs, "image", default="")
                problems.append(PodProblem(name, container, reason, restarts, image))
    return problems


def _age_seconds(pod: dict[str, Any], now: float) -> float:
    created = _g(pod, "metadata", "creationTimestamp")
    if not created:
        return float("inf")
    return now - datetime.fromisoformat(str(created).replace("Z", "+00:00")).timestamp()


def _labels(body: dict[str, Any]) -> dict[str, str]:
    return _g(body, "metadata", "labels", default={})


def revision_pods(
    workload: dict[str, Any], replica_sets: list[dict[str, Any]], pods: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """The pods of the revision being rolled out among `pods` (the workload's own, by selector):
    Deployment: those of the ReplicaSet it owns that carries its revision annotation; StatefulSet:
    controller-revision-hash = status.updateRevision; DaemonSet: pod-template-generation = its
    generation. Empty while that revision has no pods yet."""
    kind = workload.get("kind")
    if kind == "StatefulSet":
        revision = _g(workload, "status", "updateRevision")
        return [p for p in pods if revision and _labels(p).get("controller-revision-hash") == revision]
    if kind == "DaemonSet":
        generation = str(_g(workload, "metadata", "generation", default=""))
        return [p for p in pods if _labels(p).get("pod-template-generation") == generation]
    uid = _g(workload, "metadata", "uid")
    revision = _g(workload, "metadata", "annotations", default={}).get(REVISION_ANNOTATION)
    owned = [
        rs
        for rs in replica_sets
        if any(o.get("uid") == uid for o in _g(rs, "metadata", "ownerReferences", default=[]))
    ]
    current = [
        rs
        for rs in owned
        if _g(rs, "metadata", "annotations", default={}).get(REVISION_ANNOTATION) == revision
    ]
    if not current:
        return []
    template_hash = _labels(current[0]).get("pod-template-hash")
    return [p for p in pods if template_hash and _labels(p).get("pod-template-hash") == template_hash]
