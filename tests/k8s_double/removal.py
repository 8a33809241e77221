"""Deletion: preconditions, finalizers, namespace contents, garbage collection of dependents
(ownerReferences) and CRD uninstall."""

from __future__ import annotations

import json

from . import crds, status
from .verbs import Resources, Target, WriteOptions, timestamp

PROPAGATION = ("Orphan", "Background", "Foreground")


def _options_body(body: bytes) -> dict:
    if not body:
        return {}
    try:
        parsed = json.loads(body)
    except ValueError:
        raise status.bad_request("error decoding DeleteOptions") from None
    return parsed if isinstance(parsed, dict) else {}


def delete(
    resources: Resources, target: Target, options: WriteOptions, query: dict, body: bytes
) -> tuple[int, dict]:
    """Delete one object. Returns (200, final object), or (202, object) while finalizers remain."""
    delete_options = _options_body(body)
    propagation = query.get("propagationPolicy") or delete_options.get("propagationPolicy")
    if propagation and propagation not in PROPAGATION:
        raise status.bad_request(f'propagationPolicy: Unsupported value: "{propagation}"')
    store = resources.store
    with store.lock:
        obj = resources.get(target)
        preconditions = delete_options.get("preconditions") or {}
        for key in ("uid", "resourceVersion"):
            if preconditions.get(key) and preconditions[key] != obj["metadata"].get(key):
                raise status.modified_conflict(target.rtype, target.name)
        if options.dry_run:
            return 200, obj
        if obj["metadata"].get("finalizers"):
            if not obj["metadata"].get("deletionTimestamp"):
                obj["metadata"]["deletionTimestamp"] = timestamp(resources.clock)
                obj["metadata"]["deletionGracePeriodSeconds"] = 0
                obj = store.write(target.rtype, obj)
            return 202, obj
        if target.rtype.kind == "Namespace" and not target.rtype.group:
            _empty_namespace(resources, target.name)
        final = store.remove(target.rtype, target.namespace, target.name) or obj
        if propagation != "Orphan":
            _collect_dependents(resources, obj["metadata"]["uid"])
        if target.rtype.kind == "CustomResourceDefinition" and target.rtype.group == crds.CRD_GROUP:
            _uninstall(resources, obj)
    if target.rtype.kind == "Namespace":
        final["metadata"]["deletionTimestamp"] = timestamp(resources.clock)
        final["status"] = {"phase": "Terminating"}
    return 200, final


def delete_collection(
    resources: Resources, target: Target, options: WriteOptions, query: dict, body: bytes
) -> dict:
    """Delete every object a list with the same selectors would return; returns that list."""
    selectors = {k: v for k, v in query.items() if k in ("labelSelector", "fieldSelector")}
    with resources.store.lock:
        listed = resources.list(target, selectors)
        deleted = []
        for item in listed["items"]:
            meta = item["metadata"]
            one = Target(target.rtype, meta.get("namespace", ""), meta["name"])
            deleted.append(delete(resources, one, options, query, body)[1])
    listed["items"] = deleted
    return listed


def _empty_namespace(resources: Resources, namespace: str) -> None:
    for rtype in resources.catalog.types():
        if rtype.namespaced:
            for obj in resources.store.list_objects(rtype, namespace):
                resources.store.remove(rtype, namespace, obj["metadata"]["name"])


def _collect_dependents(resources: Resources, owner_uid: str) -> None:
    """Background garbage collection, done at once: delete everything the owner owned."""
    for rtype in resources.catalog.types():
        for obj in resources.store.list_objects(rtype):
            owners = obj["metadata"].get("ownerReferences") or []
            if any(ref.get("uid") == owner_uid for ref in owners):
                meta = obj["metadata"]
                if resources.store.remove(rtype, meta.get("namespace", ""), meta["name"]):
                    _collect_dependents(resources, meta["uid"])


def _uninstall(resources: Resources, crd: dict) -> None:
    spec = crd.get("spec") or {}
    for rtype in resources.catalog.remove(spec.get("group", ""), (spec.get("names") or {}).get("plural", "")):
        resources.store.drop_type(rtype)
