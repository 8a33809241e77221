"""The `scale` and `log` subresources."""

from __future__ import annotations

import copy
import json
import threading
import time

from . import status
from .patches import PatchError, json_patch, merge_patch
from .verbs import Resources, Target, WriteOptions


def scale_view(obj: dict) -> dict:
    """The autoscaling/v1 Scale the real server derives from a workload."""
    spec, current = obj.get("spec") or {}, obj.get("status") or {}
    labels = (spec.get("selector") or {}).get("matchLabels") or {}
    meta = obj["metadata"]
    keep = ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {key: meta[key] for key in keep if key in meta},
        "spec": {"replicas": spec.get("replicas", 0)},
        "status": {
            "replicas": current.get("replicas", 0),
            "selector": ",".join(f"{k}={v}" for k, v in sorted(labels.items())),
        },
    }


def write_scale(
    resources: Resources, target: Target, body: bytes, content_type: str | None, options: WriteOptions
) -> dict:
    """PUT (content_type None) or merge/JSON PATCH of a Scale; changes only spec.replicas."""
    try:
        document = json.loads(body or b"null")
    except ValueError:
        raise status.bad_request("error decoding Scale") from None
    with resources.store.lock:
        obj = resources.get(target)
        current = scale_view(obj)
        desired: object
        try:
            if content_type is None:
                desired = document
            elif content_type == "application/json-patch+json":
                desired = json_patch(current, document)
            else:
                desired = merge_patch(current, document)
        except PatchError as error:
            raise status.ApiError(422, str(error)) from None
        if not isinstance(desired, dict):
            raise status.bad_request("the body of the request is not a Scale object")
        wanted = (desired.get("metadata") or {}).get("resourceVersion")
        if wanted and wanted != obj["metadata"]["resourceVersion"]:
            raise status.modified_conflict(target.rtype, target.name)
        updated = copy.deepcopy(obj)
        updated.setdefault("spec", {})["replicas"] = (desired.get("spec") or {}).get("replicas", 0)
        main = Target(target.rtype, target.namespace, target.name)
        return scale_view(resources.commit(main, obj, updated, options, "main"))


class PodLogs:
    """Log text per pod and container, set by tests and served by `pods/<name>/log`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._text: dict[tuple[str, str, str | None, bool], str] = {}
        # When each line was written, as the kubelet records it (served with `timestamps=true`): a
        # text set again keeps the times of the lines it starts with, new lines get the time now.
        self._times: dict[tuple[str, str, str | None, bool], list[str]] = {}

    def set(self, namespace: str, pod: str, text: str, container: str | None, previous: bool) -> None:
        key = (namespace, pod, container, previous)
        with self._lock:
            old = self._text.get(key, "").splitlines()
            lines = text.splitlines()
            kept = 0
            while kept < min(len(old), len(lines)) and old[kept] == lines[kept]:
                kept += 1
            times = self._times.get(key, [])[:kept]
            for _ in lines[kept:]:
                now = time.time_ns()
                times.append(
                    time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now // 10**9)) + f".{now % 10**9:09d}Z"
                )
            self._text[key], self._times[key] = text, times

    def _stamped(self, key: tuple[str, str, str | None, bool], text: str) -> str:
        times = self._times.get(key, [])
        return "".join(f"{times[i]} {line}" for i, line in enumerate(text.splitlines(keepends=True)))

    def read(self, resources: Resources, target: Target, query: dict) -> str:
        """The log text after `container`, `previous`, `timestamps`, `tailLines` and `limitBytes`."""
        pod = resources.get(target)
        names = [c.get("name") for c in (pod.get("spec") or {}).get("containers") or []]
        container = query.get("container")
        previous = (query.get("previous") or "").lower() in ("true", "1")
        if container and container not in names:
            raise status.bad_request(f"container {container} is not valid for pod {target.name}")
        if not container and len(names) == 1:
            container = names[0]
        with self._lock:
            key = (target.namespace, target.name, container, previous)
            text = self._text.get(key)
            if text is None:
                key = (target.namespace, target.name, None, previous)
                text = self._text.get(key)
            if text is not None and (query.get("timestamps") or "").lower() in ("true", "1"):
                text = self._stamped(key, text)
        if not container and text is None:
            raise status.bad_request(
                f"a container name must be specified for pod {target.name}, "
                f"choose one of: [{' '.join(names)}]"
            )
        if previous and text is None:
            raise status.bad_request(
                f'previous terminated container "{container}" in pod "{target.name}" not found'
            )
        text = text or ""
        if query.get("tailLines") is not None:
            lines = text.splitlines(keepends=True)
            count = int(query["tailLines"])
            text = "".join(lines[-count:]) if count > 0 else ""
        if query.get("limitBytes"):
            text = text.encode()[: int(query["limitBytes"])].decode(errors="ignore")
        return text
