"""Adoption: this project takes over an object another tool applied.

After `kubectl apply -k` the fields belong to the manager `kubectl-client-side-apply`, recorded
both in managedFields and in the `kubectl.kubernetes.io/last-applied-configuration` annotation. The
deploy's force apply (DeployOptions.adopt) makes this project the owner of every field it sets;
fields with equal values stay shared with the old manager, so what is left to migrate, as
`kubectl apply --server-side` does when it upgrades from client-side apply, is the client-side
record: the old manager's managedFields entries and the annotation (a later client-side
`kubectl apply` would otherwise compute its three-way diff from a stale record and delete fields).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .foreign import field_paths

if TYPE_CHECKING:
    from .client import Kube

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
CLIENT_SIDE_MANAGERS = frozenset({"kubectl-client-side-apply", "kubectl"})


def adopt_ownership(kube: Kube, live: dict[str, Any]) -> bool:
    """Drop the client-side-apply record of `live` (just force-applied by this project): the
    last-applied annotation and the old managers' managedFields entries, whose fields with equal
    values the force apply left shared. True when there was anything to drop."""
    meta = live.get("metadata") or {}
    entries = meta.get("managedFields") or []
    stale = [i for i, e in enumerate(entries) if e.get("manager") in CLIENT_SIDE_MANAGERS]
    annotated = LAST_APPLIED in (meta.get("annotations") or {})
    if not stale and not annotated:
        return False
    ops: list[dict[str, Any]] = [
        {"op": "test", "path": "/metadata/resourceVersion", "value": meta["resourceVersion"]}
    ]
    ops += [{"op": "remove", "path": f"/metadata/managedFields/{i}"} for i in reversed(stale)]
    if annotated:
        ops.append(
            {
                "op": "remove",
                "path": "/metadata/annotations/" + LAST_APPLIED.replace("~", "~0").replace("/", "~1"),
            }
        )
    kube.json_patch(live["apiVersion"], live["kind"], meta["name"], meta.get("namespace", ""), ops)
    return True


def takeover(before: dict[str, Any] | None, after: dict[str, Any], manager: str) -> str:
    """What `manager` took over by adopting `after` (the force-applied object) from the other field
    managers of `before` (the object as it was): the fields of each that `manager` now owns, and
    the client-side-apply record. "" when there was nothing to take."""
    if not before:
        return ""
    ours = set().union(
        *(
            field_paths(e)
            for e in (after.get("metadata") or {}).get("managedFields") or []
            if e.get("manager") == manager
        )
    )
    taken: dict[str, int] = {}
    for entry in (before.get("metadata") or {}).get("managedFields") or []:
        name = entry.get("manager", "")
        if name != manager and (count := len(field_paths(entry) & ours)):
            taken[name] = taken.get(name, 0) + count
    parts = [f"{count} fields from {name}" for name, count in sorted(taken.items())]
    if LAST_APPLIED in ((before.get("metadata") or {}).get("annotations") or {}):
        parts.append("the last-applied-configuration record")
    return "took over " + ", ".join(parts) if parts else ""


def client_side_managers(live: dict[str, Any]) -> set[str]:
    """The client-side-apply managers that still own fields of `live`."""
    entries = (live.get("metadata") or {}).get("managedFields") or []
    return {e.get("manager", "") for e in entries} & CLIENT_SIDE_MANAGERS
