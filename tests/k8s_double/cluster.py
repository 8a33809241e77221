"""What the simulated controllers see and do: list, create, update with optimistic
concurrency, write status, delete and record Events, straight against the server's state."""

from __future__ import annotations

import copy
import hashlib
import json
import random
from collections.abc import Callable
from datetime import UTC, datetime

from .server import ApiServer
from .verbs import Target, WriteOptions

_HASH_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


def template_hash(template: dict) -> str:
    """A stable 10-character hash of a pod template, in the alphabet the real one uses."""
    digest = int(hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest(), 16)
    chars = []
    for _ in range(10):
        digest, index = divmod(digest, len(_HASH_ALPHABET))
        chars.append(_HASH_ALPHABET[index])
    return "".join(chars)


def owner_reference(owner: dict) -> dict:
    return {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def owned_by(objects: list[dict], owner: dict) -> list[dict]:
    uid = owner["metadata"]["uid"]
    return [
        obj
        for obj in objects
        if any(ref.get("uid") == uid for ref in obj["metadata"].get("ownerReferences") or [])
    ]


def is_ready(pod: dict) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


class Cluster:
    """Server state as a controller manipulates it; writes go through full server semantics."""

    def __init__(self, server: ApiServer, clock: Callable[[], datetime], rng: random.Random):
        self.server = server
        self.clock = clock
        self.rng = rng
        # Failure modes the workload controllers hand to the kubelet for this step: per pod, and
        # per owner (kind, namespace, name) for pods an owner creates later in the step.
        self.pod_modes: dict[tuple[str, str], str] = {}
        self.owner_modes: dict[tuple[str, str, str], str] = {}

    def mode_for(self, pod: dict) -> str | None:
        meta = pod["metadata"]
        if (meta["namespace"], meta["name"]) in self.pod_modes:
            return self.pod_modes[(meta["namespace"], meta["name"])]
        for ref in meta.get("ownerReferences") or []:
            mode = self.owner_modes.get((ref.get("kind", ""), meta["namespace"], ref.get("name", "")))
            if mode:
                return mode
        return None

    def now(self) -> str:
        return self.clock().astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    def suffix(self) -> str:
        return "".join(self.rng.choice(_HASH_ALPHABET) for _ in range(5))

    def list(self, api_version: str, kind: str, namespace: str | None = None) -> list[dict]:
        return self.server.objects(api_version, kind, namespace)

    def create(self, obj: dict, manager: str) -> dict | None:
        rtype = self.server.resource_type(obj["apiVersion"], obj["kind"])
        meta = obj["metadata"]
        with self.server.store.lock:
            if self.server.store.get(rtype, meta.get("namespace", ""), meta["name"]) is not None:
                return None
            return self.server.seed(obj, manager=manager)

    def update(self, obj: dict, manager: str) -> dict | None:
        """Write `obj` unless it changed since it was read (then the next step retries)."""
        rtype = self.server.resource_type(obj["apiVersion"], obj["kind"])
        meta = obj["metadata"]
        target = Target(rtype, meta.get("namespace", ""), meta["name"])
        with self.server.store.lock:
            current = self.server.store.get(rtype, target.namespace, target.name)
            if current is None or current["metadata"]["resourceVersion"] != meta["resourceVersion"]:
                return None
            options = WriteOptions(manager=manager, manager_given=True)
            return self.server.resources.commit(target, current, obj, options, "main")

    def set_status(self, obj: dict, status: dict, manager: str) -> None:
        if obj.get("status") != status:
            self.server.write_status(obj, copy.deepcopy(status), manager=manager)

    def delete(self, obj: dict) -> None:
        meta = obj["metadata"]
        self.server.remove(obj["apiVersion"], obj["kind"], meta["name"], meta.get("namespace", ""))

    def event(self, involved: dict, reason: str, message: str, *, warning: bool, component: str) -> None:
        """Record an Event about `involved`, like `kubectl describe` shows."""
        meta = involved["metadata"]
        namespace = meta.get("namespace", "default")
        now = self.now()
        self.server.seed(
            {
                "apiVersion": "v1",
                "kind": "Event",
                "metadata": {"name": f"{meta['name']}.{self.suffix()}", "namespace": namespace},
                "involvedObject": {
                    "apiVersion": involved["apiVersion"],
                    "kind": involved["kind"],
                    "name": meta["name"],
                    "namespace": namespace,
                    "uid": meta.get("uid", ""),
                },
                "reason": reason,
                "message": message,
                "type": "Warning" if warning else "Normal",
                "source": {"component": component},
                "count": 1,
                "firstTimestamp": now,
                "lastTimestamp": now,
            },
            manager=component,
        )


def pod_from_template(owner: dict, template: dict, name: str, labels: dict) -> dict:
    """A pod as a workload controller creates it: template labels plus `labels`, owned by `owner`."""
    meta = template.get("metadata") or {}
    pod_meta = {
        "name": name,
        "namespace": owner["metadata"]["namespace"],
        "labels": {**(meta.get("labels") or {}), **labels},
        "ownerReferences": [owner_reference(owner)],
    }
    if meta.get("annotations"):
        pod_meta["annotations"] = dict(meta["annotations"])
    spec = copy.deepcopy(template.get("spec") or {})
    spec["nodeName"] = "node-1"
    return {"apiVersion": "v1", "kind": "Pod", "metadata": pod_meta, "spec": spec}


def condition(previous: list[dict], kind: str, ok: bool, reason: str, message: str, now: str) -> dict:
    """A workload condition that keeps its timestamps while its status and reason hold."""
    before = next((c for c in previous if c.get("type") == kind), None)
    status = "True" if ok else "False"
    if before and (before.get("status"), before.get("reason")) == (status, reason):
        since, updated = before.get("lastTransitionTime", now), before.get("lastUpdateTime", now)
    elif before and before.get("status") == status:
        since, updated = before.get("lastTransitionTime", now), now
    else:
        since = updated = now
    return {
        "type": kind,
        "status": status,
        "lastUpdateTime": updated,
        "lastTransitionTime": since,
        "reason": reason,
        "message": message,
    }


def without_zeros(status: dict) -> dict:
    """Drop zero counters, as the real server's omitempty JSON does."""
    return {key: value for key, value in status.items() if value not in (0, None)}
