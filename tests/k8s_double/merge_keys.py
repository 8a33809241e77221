"""Which lists merge item by item, and by which key: the patchMergeKey / listMapKey subset the
double knows. Every other list is atomic (replaced whole)."""

from __future__ import annotations

import json

_KEYS_BY_FIELD = {
    "containers": ("name",),
    "initContainers": ("name",),
    "ephemeralContainers": ("name",),
    "env": ("name",),
    "volumes": ("name",),
    "imagePullSecrets": ("name",),
    "volumeMounts": ("mountPath",),
    "volumeDevices": ("devicePath",),
    "ownerReferences": ("uid",),
    "conditions": ("type",),
    "hostAliases": ("ip",),
}


def list_key(field: str, items: list) -> tuple[str, ...] | None:
    """The key fields identifying items of the list stored under `field`, or None if atomic."""
    if not items or not all(isinstance(item, dict) for item in items):
        return None
    if field == "ports":
        if all("containerPort" in item for item in items):
            return ("containerPort", "protocol")
        if all("port" in item for item in items):
            return ("port", "protocol")
        return None
    key = _KEYS_BY_FIELD.get(field)
    if key and all(all(part in item for part in key) for item in items):
        return key
    return None


def item_identity(item: dict, key: tuple[str, ...]) -> dict:
    """The key values of one item, with the protocol default the server applies."""
    return {part: item.get(part, "TCP" if part == "protocol" else None) for part in key}


def item_path_element(item: dict, key: tuple[str, ...]) -> str:
    """The `k:{...}` element naming an item in a managedFields path."""
    identity = item_identity(item, key)
    return "k:" + json.dumps(identity, sort_keys=True, separators=(",", ":"))


def find_item(items: list, identity: dict) -> int | None:
    """Index of the item whose key fields equal `identity`."""
    for index, item in enumerate(items):
        if isinstance(item, dict) and item_identity(item, tuple(identity)) == identity:
            return index
    return None
