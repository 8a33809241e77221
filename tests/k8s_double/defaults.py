"""The defaulting the real API server does on write, for the fields a deploy is likely to
compare: workload specs, pod templates, Service networking, initial status per kind."""

from __future__ import annotations

import base64
import copy
import itertools

from llm_cost_ops_ops.bundles.quantity import canonical_resources

_cluster_ips = itertools.count(1)


def _set(mapping: dict, key: str, value: object) -> None:
    mapping.setdefault(key, value)


def _default_pod_spec(spec: dict, *, restart: bool = True) -> None:
    if restart:  # Job templates must choose Never or OnFailure themselves
        _set(spec, "restartPolicy", "Always")
    _set(spec, "dnsPolicy", "ClusterFirst")
    _set(spec, "schedulerName", "default-scheduler")
    _set(spec, "terminationGracePeriodSeconds", 30)
    _set(spec, "securityContext", {})
    for container in (spec.get("initContainers") or []) + (spec.get("containers") or []):
        image = container.get("image", "")
        tagged = ":" in image.rsplit("/", 1)[-1] or "@" in image
        pull = "IfNotPresent" if tagged and not image.endswith(":latest") else "Always"
        _set(container, "imagePullPolicy", pull)
        _set(container, "terminationMessagePath", "/dev/termination-log")
        _set(container, "terminationMessagePolicy", "File")
        for port in container.get("ports") or []:
            _set(port, "protocol", "TCP")


def _template_spec(spec: dict) -> dict | None:
    template = spec.get("template")
    if isinstance(template, dict) and isinstance(template.get("spec"), dict):
        return template["spec"]
    return None


def _default_deployment(spec: dict) -> None:
    _set(spec, "replicas", 1)
    _set(spec, "revisionHistoryLimit", 10)
    _set(spec, "progressDeadlineSeconds", 600)
    strategy = spec.setdefault("strategy", {})
    _set(strategy, "type", "RollingUpdate")
    if strategy["type"] == "RollingUpdate":
        rolling = strategy.setdefault("rollingUpdate", {})
        _set(rolling, "maxSurge", "25%")
        _set(rolling, "maxUnavailable", "25%")


def _default_statefulset(spec: dict) -> None:
    _set(spec, "replicas", 1)
    _set(spec, "podManagementPolicy", "OrderedReady")
    _set(spec, "revisionHistoryLimit", 10)
    strategy = spec.setdefault("updateStrategy", {})
    _set(strategy, "type", "RollingUpdate")
    if strategy["type"] == "RollingUpdate":
        _set(strategy.setdefault("rollingUpdate", {}), "partition", 0)
    retention = spec.setdefault("persistentVolumeClaimRetentionPolicy", {})
    _set(retention, "whenDeleted", "Retain")
    _set(retention, "whenScaled", "Retain")
    # As the real server does inside the atomic volumeClaimTemplates list: each template is
    # defaulted (kind, apiVersion, volumeMode) and carries an empty status.
    for template in spec.get("volumeClaimTemplates") or []:
        if isinstance(template, dict):
            _set(template, "apiVersion", "v1")
            _set(template, "kind", "PersistentVolumeClaim")
            _set(template.setdefault("spec", {}), "volumeMode", "Filesystem")
            _set(template, "status", {"phase": "Pending"})


def _default_job(spec: dict) -> None:
    _set(spec, "backoffLimit", 6)
    _set(spec, "completions", 1)
    _set(spec, "parallelism", 1)
    _set(spec, "completionMode", "NonIndexed")
    _set(spec, "suspend", False)


def _default_service(spec: dict, old: dict | None) -> None:
    _set(spec, "type", "ClusterIP")
    _set(spec, "sessionAffinity", "None")
    old_ip = ((old or {}).get("spec") or {}).get("clusterIP")
    if spec["type"] != "ExternalName" and not spec.get("clusterIP"):
        number = next(_cluster_ips)
        spec["clusterIP"] = old_ip or f"10.96.{number // 250}.{number % 250 + 1}"
    if spec.get("clusterIP"):
        _set(spec, "clusterIPs", [spec["clusterIP"]])
        _set(spec, "ipFamilies", ["IPv4"])
        _set(spec, "ipFamilyPolicy", "SingleStack")
    _set(spec, "internalTrafficPolicy", "Cluster")
    for port in spec.get("ports") or []:
        _set(port, "protocol", "TCP")
        _set(port, "targetPort", port.get("port"))


def apply_defaults(kind: str, obj: dict, old: dict | None) -> None:
    """Fill server-side defaults into `obj` in place; `old` is the stored version on update.
    Quantities are stored in canonical form, as resource.Quantity serialises them (`1000m` -> `1`)."""
    if kind not in ("ConfigMap", "Secret") and isinstance(obj.get("spec"), dict):
        obj["spec"] = canonical_resources(obj["spec"])
    spec = obj.get("spec")
    if kind == "Secret":
        string_data = obj.pop("stringData", None) or {}
        if string_data:
            data = obj.setdefault("data", {})
            for key, value in string_data.items():
                data[key] = base64.b64encode(str(value).encode()).decode()
        _set(obj, "type", "Opaque")
    if kind == "Namespace":
        obj["metadata"].setdefault("labels", {})["kubernetes.io/metadata.name"] = obj["metadata"]["name"]
        obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
    if not isinstance(spec, dict):
        return
    if kind == "Pod":
        _default_pod_spec(spec)
    elif kind == "Deployment":
        _default_deployment(spec)
    elif kind == "StatefulSet":
        _default_statefulset(spec)
    elif kind == "ReplicaSet":
        _set(spec, "replicas", 1)
    elif kind == "Job":
        _default_job(spec)
    elif kind == "CronJob":
        _set(spec, "concurrencyPolicy", "Allow")
        _set(spec, "suspend", False)
        _set(spec, "successfulJobsHistoryLimit", 3)
        _set(spec, "failedJobsHistoryLimit", 1)
        job_spec = (spec.get("jobTemplate") or {}).get("spec")
        if isinstance(job_spec, dict):
            _default_job(job_spec)
            spec = job_spec
    elif kind == "Service":
        _default_service(spec, old)
    elif kind == "PersistentVolumeClaim":
        _set(spec, "volumeMode", "Filesystem")
    template_spec = _template_spec(spec)
    if template_spec is not None:
        _default_pod_spec(template_spec, restart=kind not in ("Job", "CronJob"))


def initial_status(kind: str) -> dict:
    """What `status` holds right after create, before any controller acted: the fields the real
    server serializes even when zero (the official client's models require some of them)."""
    return copy.deepcopy(_INITIAL_STATUS.get(kind, {}))


_INITIAL_STATUS: dict[str, dict] = {
    "Namespace": {"phase": "Active"},
    "Pod": {"phase": "Pending"},
    "PersistentVolumeClaim": {"phase": "Pending"},
    "Service": {"loadBalancer": {}},
    "Ingress": {"loadBalancer": {}},
    "StatefulSet": {"replicas": 0, "availableReplicas": 0},
    "ReplicaSet": {"replicas": 0},
    "HorizontalPodAutoscaler": {"desiredReplicas": 0},
    "PodDisruptionBudget": {
        "disruptionsAllowed": 0,
        "currentHealthy": 0,
        "desiredHealthy": 0,
        "expectedPods": 0,
    },
}
