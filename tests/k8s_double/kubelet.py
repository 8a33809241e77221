"""Pod status as the kubelet reports it: Pending while containers are created, then Running
and Ready, or one of the failure modes a test injected."""

from __future__ import annotations

import hashlib

from .cluster import Cluster

FAILURE_MODES = ("crashloop", "imagepull", "oomkilled", "progress-deadline", "stuck", "fail")
MAX_RESTARTS = 5  # restartCount stops growing here, so a crash-looping cluster can settle


def _digest(*parts: object) -> str:
    return hashlib.sha256("/".join(map(str, parts)).encode()).hexdigest()


def _pod_ip(pod: dict) -> str:
    number = int(_digest(pod["metadata"]["uid"])[:4], 16)
    return f"10.244.{number // 254 % 254}.{number % 254 + 1}"


def _qos(containers: list[dict]) -> str:
    resources = [c.get("resources") or {} for c in containers]
    if not any(r.get("requests") or r.get("limits") for r in resources):
        return "BestEffort"
    guaranteed = all(
        (r.get("limits") or {}).get(k)
        and (r.get("requests") or r.get("limits") or {}).get(k) == r["limits"][k]
        for r in resources
        for k in ("cpu", "memory")
    )
    return "Guaranteed" if guaranteed else "Burstable"


def _condition(kind: str, ok: bool, since: str, reason: str = "") -> dict:
    condition = {
        "type": kind,
        "status": "True" if ok else "False",
        "lastProbeTime": None,
        "lastTransitionTime": since,
    }
    if reason and not ok:
        condition["reason"] = reason
    return condition


def _container(
    pod: dict, spec: dict, mode: str | None, since: str, previous: dict | None, terminated: bool
) -> dict:
    """One containerStatuses entry for container `spec` in `mode` (None means healthy)."""
    name, image = spec.get("name", ""), spec.get("image", "")
    restarts = (previous or {}).get("restartCount", 0)
    status = {
        "name": name,
        "image": image,
        "imageID": f"{image.split(':')[0]}@sha256:{_digest(image)}",
        "containerID": f"containerd://{_digest(pod['metadata']['uid'], name, restarts)}",
        "ready": False,
        "started": False,
        "restartCount": restarts,
        "state": {},
        "lastState": {},
    }
    if mode == "imagepull":
        reason = "ImagePullBackOff" if previous and "waiting" in previous.get("state", {}) else "ErrImagePull"
        message = (
            f'Back-off pulling image "{image}"'
            if reason == "ImagePullBackOff"
            else f'failed to pull image "{image}"'
        )
        status.pop("containerID")
        status.update(imageID="", state={"waiting": {"reason": reason, "message": message}})
    elif mode in ("crashloop", "oomkilled", "fail"):
        exit_code, reason = (137, "OOMKilled") if mode == "oomkilled" else (1, "Error")
        ended = {"exitCode": exit_code, "reason": reason, "startedAt": since, "finishedAt": since}
        ended["containerID"] = status["containerID"]
        if terminated:
            status["state"] = {"terminated": ended}
        else:
            status["restartCount"] = min(restarts + 1, MAX_RESTARTS)
            message = f"back-off 10s restarting failed container={name} pod={pod['metadata']['name']}"
            status["state"] = {"waiting": {"reason": "CrashLoopBackOff", "message": message}}
            status["lastState"] = {"terminated": ended}
    elif mode in ("stuck", "progress-deadline"):
        status.update(started=True, state={"running": {"startedAt": since}})
    elif terminated:
        status["state"] = {
            "terminated": {"exitCode": 0, "reason": "Completed", "startedAt": since, "finishedAt": since}
        }
    else:
        status.update(started=True, ready=True, state={"running": {"startedAt": since}})
    return status


def next_status(pod: dict, mode: str | None, image_modes: list[tuple[str, str]], cluster: Cluster) -> dict:
    """The status the kubelet would report next for `pod`."""
    spec, current = pod.get("spec") or {}, pod.get("status") or {}
    containers = spec.get("containers") or []
    since = current.get("startTime") or cluster.now()
    base = {
        "hostIP": "10.0.0.1",
        "hostIPs": [{"ip": "10.0.0.1"}],
        "startTime": since,
        "qosClass": _qos(containers),
    }
    if "startTime" not in current:
        waiting = {"waiting": {"reason": "ContainerCreating"}}
        statuses = [
            {
                "name": c.get("name"),
                "image": c.get("image"),
                "imageID": "",
                "ready": False,
                "started": False,
                "restartCount": 0,
                "state": waiting,
                "lastState": {},
            }
            for c in containers
        ]
        conditions = [
            _condition("PodReadyToStartContainers", False, since),
            _condition("Initialized", True, since),
            _condition("Ready", False, since, "ContainersNotReady"),
            _condition("ContainersReady", False, since, "ContainersNotReady"),
            _condition("PodScheduled", True, since),
        ]
        return {**base, "phase": "Pending", "conditions": conditions, "containerStatuses": statuses}

    run_once = spec.get("restartPolicy") in ("Never", "OnFailure") and (
        mode is None or spec.get("restartPolicy") == "Never"
    )
    previous = {s.get("name"): s for s in current.get("containerStatuses") or []}
    statuses = []
    for container in containers:
        container_mode = mode
        for fragment, image_mode in image_modes:
            if fragment in container.get("image", ""):
                container_mode = image_mode
        statuses.append(
            _container(pod, container, container_mode, since, previous.get(container.get("name")), run_once)
        )
    ready = all(s["ready"] for s in statuses)
    if run_once and all("terminated" in s["state"] for s in statuses):
        phase = "Succeeded" if all(s["state"]["terminated"]["exitCode"] == 0 for s in statuses) else "Failed"
    elif any(
        "waiting" in s["state"] and s["state"]["waiting"]["reason"] != "CrashLoopBackOff" for s in statuses
    ):
        phase = "Pending"
    else:
        phase = "Running"
    finished = phase in ("Succeeded", "Failed")
    conditions = [
        _condition("PodReadyToStartContainers", phase != "Pending", since),
        _condition("Initialized", True, since),
        _condition(
            "Ready", ready and not finished, since, "PodCompleted" if finished else "ContainersNotReady"
        ),
        _condition(
            "ContainersReady",
            ready and not finished,
            since,
            "PodCompleted" if finished else "ContainersNotReady",
        ),
        _condition("PodScheduled", True, since),
    ]
    ip = _pod_ip(pod)
    return {
        **base,
        "phase": phase,
        "conditions": conditions,
        "podIP": ip,
        "podIPs": [{"ip": ip}],
        "containerStatuses": statuses,
    }


def _warnings(pod: dict, status: dict) -> list[tuple[str, str]]:
    """(reason, message) of the Warning events the kubelet records for this status."""
    name = pod["metadata"]["name"]
    found = []
    for container in status.get("containerStatuses") or []:
        waiting = container.get("state", {}).get("waiting") or {}
        reason, image = waiting.get("reason"), container.get("image")
        if reason == "CrashLoopBackOff":
            found.append(
                ("BackOff", f"Back-off restarting failed container {container['name']} in pod {name}")
            )
        elif reason == "ImagePullBackOff":
            found.append(("BackOff", f'Back-off pulling image "{image}"'))
        elif reason == "ErrImagePull":
            found.append(("Failed", f'Failed to pull image "{image}": not found'))
        elif container.get("started") and not container.get("ready") and "running" in container["state"]:
            found.append(("Unhealthy", "Readiness probe failed: HTTP probe failed with statuscode: 503"))
    return found


def run(cluster: Cluster, image_modes: list[tuple[str, str]]) -> None:
    """Advance every pod that has not finished by one kubelet report, with its Warning events."""
    pods = cluster.list("v1", "Pod")
    events = cluster.list("v1", "Event")
    recorded = {(e["involvedObject"].get("uid"), e.get("reason")) for e in events}
    for pod in pods:
        if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            continue
        status = next_status(pod, cluster.mode_for(pod), image_modes, cluster)
        cluster.set_status(pod, status, "kubelet")
        for reason, message in _warnings(pod, status):
            if (pod["metadata"]["uid"], reason) not in recorded:
                recorded.add((pod["metadata"]["uid"], reason))
                cluster.event(pod, reason, message, warning=True, component="kubelet")
