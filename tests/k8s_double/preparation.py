"""What the server does to an object before storing it, whatever the verb."""

from __future__ import annotations

import copy
import uuid

from . import crds
from .catalog import ResourceType
from .defaults import apply_defaults, initial_status

_IDENTITY = ("uid", "creationTimestamp", "name", "namespace", "deletionTimestamp")


def _spec_part(rtype: ResourceType, obj: dict) -> dict:
    skipped = {"metadata", "apiVersion", "kind"} | ({"status"} if rtype.has_status else set())
    return {k: v for k, v in obj.items() if k not in skipped}


def prepare(rtype: ResourceType, old: dict | None, new: dict, scope: str, now: str) -> dict:
    """The object to store in place of `old` (None on create): identity fields kept from `old`,
    incoming status ignored (or, in the status scope, everything but status), server defaults,
    and `metadata.generation` bumped only when the spec part changed."""
    if scope == "status" and old is not None:
        result = copy.deepcopy(old)
        result["status"] = copy.deepcopy(new.get("status") or {})
        return result
    new = copy.deepcopy(new)
    new["apiVersion"], new["kind"] = rtype.api_version, rtype.kind
    meta = new.setdefault("metadata", {})
    if rtype.namespaced:
        meta["namespace"] = meta.get("namespace", "")
    else:
        meta.pop("namespace", None)
    if old is None:
        meta.update(uid=str(uuid.uuid4()), creationTimestamp=now, generation=1)
        for key in ("resourceVersion", "deletionTimestamp", "deletionGracePeriodSeconds"):
            meta.pop(key, None)
        if rtype.kind == "CustomResourceDefinition":
            new["status"] = crds.established_status(new)
        elif rtype.has_status:
            new["status"] = initial_status(rtype.kind)
        apply_defaults(rtype.kind, new, None)
        return new
    for key in _IDENTITY:
        if key in old["metadata"]:
            meta[key] = old["metadata"][key]
    meta["resourceVersion"] = old["metadata"]["resourceVersion"]
    if rtype.has_status:
        new.pop("status", None)
        if "status" in old:
            new["status"] = copy.deepcopy(old["status"])
    apply_defaults(rtype.kind, new, old)
    generation = old["metadata"].get("generation", 1)
    changed = _spec_part(rtype, old) != _spec_part(rtype, new)
    meta["generation"] = generation + 1 if changed else generation
    return new
