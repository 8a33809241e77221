"""StatefulSet and Job controllers: ordinal pods with their claims and revisions, and Jobs that
run pods to completion or to their backoff limit."""

from __future__ import annotations

import copy
import re

from .cluster import Cluster, condition, is_ready, owned_by, pod_from_template, template_hash, without_zeros
from .rollouts import MANAGER, Failures

REVISION_LABEL = "controller-revision-hash"


def _claims(cluster: Cluster, statefulset: dict, pod_name: str) -> list[dict]:
    """Create the ordinal's PersistentVolumeClaims; return the pod volumes that mount them."""
    spec, namespace = statefulset["spec"], statefulset["metadata"]["namespace"]
    labels = (spec.get("selector") or {}).get("matchLabels") or {}
    volumes = []
    for template in spec.get("volumeClaimTemplates") or []:
        claim = f"{template['metadata']['name']}-{pod_name}"
        pvc = {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": claim, "namespace": namespace, "labels": dict(labels)},
            "spec": copy.deepcopy(template.get("spec") or {}),
        }
        cluster.create(pvc, MANAGER)
        volumes.append({"name": template["metadata"]["name"], "persistentVolumeClaim": {"claimName": claim}})
    return volumes


def _statefulset(cluster: Cluster, statefulset: dict, pods: list[dict], failures: Failures) -> None:
    meta, spec = statefulset["metadata"], statefulset["spec"]
    namespace, name, desired = meta["namespace"], meta["name"], spec.get("replicas", 1)
    revision = f"{name}-{template_hash(spec['template'])}"
    pattern = re.compile(rf"^{re.escape(name)}-(\d+)$")
    mine = {
        int(match.group(1)): pod
        for pod in owned_by(pods, statefulset)
        if (match := pattern.match(pod["metadata"]["name"]))
    }
    parallel = spec.get("podManagementPolicy") == "Parallel"
    for ordinal in sorted(mine, reverse=True):
        if ordinal >= desired:
            cluster.delete(mine.pop(ordinal))
            if not parallel:
                break
    for ordinal in range(desired):
        if ordinal in mine:
            continue
        if not parallel and not all(i in mine and is_ready(mine[i]) for i in range(ordinal)):
            break
        pod_name = f"{name}-{ordinal}"
        labels = {
            REVISION_LABEL: revision,
            "statefulset.kubernetes.io/pod-name": pod_name,
            "apps.kubernetes.io/pod-index": str(ordinal),
        }
        pod = pod_from_template(statefulset, spec["template"], pod_name, labels)
        pod["spec"].update(hostname=pod_name, subdomain=spec.get("serviceName", ""))
        pod["spec"].setdefault("volumes", []).extend(_claims(cluster, statefulset, pod_name))
        created = cluster.create(pod, MANAGER)
        if created:
            mine[ordinal] = created
        if not parallel:
            break
    strategy = spec.get("updateStrategy") or {}
    partition = (strategy.get("rollingUpdate") or {}).get("partition", 0)
    outdated = [i for i, pod in mine.items() if pod["metadata"]["labels"].get(REVISION_LABEL) != revision]
    outdated = [i for i in outdated if i >= partition]
    settled = all(is_ready(pod) for i, pod in mine.items() if i not in outdated)
    if strategy.get("type", "RollingUpdate") == "RollingUpdate" and outdated and settled:
        cluster.delete(mine.pop(max(outdated)))
    mode = failures("StatefulSet", namespace, name)
    for pod in mine.values():
        if mode and pod["metadata"]["labels"].get(REVISION_LABEL) == revision:
            cluster.pod_modes[(namespace, pod["metadata"]["name"])] = mode
    cluster.set_status(statefulset, _statefulset_status(statefulset, list(mine.values()), revision), MANAGER)


def _statefulset_status(statefulset: dict, pods: list[dict], revision: str) -> dict:
    desired = statefulset["spec"].get("replicas", 1)
    current = (statefulset.get("status") or {}).get("currentRevision") or revision
    revisions = [pod["metadata"]["labels"].get(REVISION_LABEL) for pod in pods]
    ready = sum(map(is_ready, pods))
    updated = revisions.count(revision)
    if updated == desired == ready == len(pods):
        current = revision
    return {
        "observedGeneration": statefulset["metadata"]["generation"],
        "replicas": len(pods),
        "availableReplicas": ready,
        **without_zeros(
            {"readyReplicas": ready, "currentReplicas": revisions.count(current), "updatedReplicas": updated}
        ),
        "currentRevision": current,
        "updateRevision": revision,
        "collisionCount": 0,
    }


def _job(cluster: Cluster, job: dict, pods: list[dict], failures: Failures) -> None:
    meta, spec = job["metadata"], job["spec"]
    status = job.get("status") or {}
    conditions = status.get("conditions") or []
    if spec.get("suspend") or any(
        c.get("type") in ("Complete", "Failed") and c.get("status") == "True" for c in conditions
    ):
        return
    mode = failures("Job", meta["namespace"], meta["name"])
    if mode:
        cluster.owner_modes[("Job", meta["namespace"], meta["name"])] = mode
    mine = owned_by(pods, job)
    phases = [(pod.get("status") or {}).get("phase") for pod in mine]
    succeeded, failed = phases.count("Succeeded"), phases.count("Failed")
    active = [pod for pod, phase in zip(mine, phases, strict=True) if phase not in ("Succeeded", "Failed")]
    completions, now = spec.get("completions", 1), cluster.now()
    new_status = {"startTime": status.get("startTime") or now}
    if succeeded >= completions:
        new_status["completionTime"] = now
        message = "Reached expected number of succeeded pods"
        new_status["conditions"] = [
            condition(conditions, "Complete", True, "CompletionsReached", message, now)
        ]
        active = []
    elif failed > spec.get("backoffLimit", 6):
        for pod in active:
            cluster.delete(pod)
        active = []
        message = "Job has reached the specified backoff limit"
        new_status["conditions"] = [
            condition(conditions, "Failed", True, "BackoffLimitExceeded", message, now)
        ]
    else:
        wanted = min(spec.get("parallelism", 1), completions - succeeded)
        uid = meta["uid"]
        labels = {
            "batch.kubernetes.io/job-name": meta["name"],
            "job-name": meta["name"],
            "batch.kubernetes.io/controller-uid": uid,
            "controller-uid": uid,
        }
        while len(active) < wanted:
            pod = pod_from_template(
                job, spec.get("template") or {}, f"{meta['name']}-{cluster.suffix()}", labels
            )
            created = cluster.create(pod, MANAGER)
            if created is None:
                break
            active.append(created)
    ready = sum(map(is_ready, active))
    new_status.update(without_zeros({"active": len(active), "succeeded": succeeded, "failed": failed}))
    new_status["ready"] = ready
    cluster.set_status(job, new_status, MANAGER)


def reconcile_statefulsets(cluster: Cluster, failures: Failures) -> None:
    pods = cluster.list("v1", "Pod")
    for statefulset in cluster.list("apps/v1", "StatefulSet"):
        _statefulset(cluster, statefulset, pods, failures)


def reconcile_jobs(cluster: Cluster, failures: Failures) -> None:
    pods = cluster.list("v1", "Pod")
    for job in cluster.list("batch/v1", "Job"):
        _job(cluster, job, pods, failures)
