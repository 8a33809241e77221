"""Fields another field manager added inside the specs this project's bundle defines.

A server-side apply dry-run (what drift compares) keeps every field another manager owns, so an
environment variable added with `kubectl set env`, an extra volume or a command someone set never
shows as a difference. This module reads the live object's managedFields instead: every field a
manager other than this project (and other than the controllers, through the status subresource)
owns under the watched paths, and that the bundle does not set, is a foreign addition. Self-heal
removes them with an explicit JSON patch, since server-side apply never removes another manager's
fields.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from .client import FIELD_MANAGER

# Where an addition changes what runs: containers' env, args, command, image, volume mounts and the
# pod's volumes (in pod templates and in a bare pod spec).
_CONTAINER_FIELDS = ("env", "envFrom", "args", "command", "image", "volumeMounts")
_POD_FIELDS = ("volumes",)


@dataclass(frozen=True)
class ForeignField:
    manager: str
    path: tuple[Any, ...]  # ("spec", "template", "spec", "containers", {"name": "api"}, "env", {"name": "X"})

    @property
    def display(self) -> str:
        parts: list[str] = []
        for step in self.path:
            if isinstance(step, dict):
                parts[-1] += f"[{','.join(str(v) for v in step.values())}]"
            else:
                parts.append(str(step))
        return ".".join(parts)


def _walk(node: dict[str, Any], prefix: tuple[Any, ...]) -> list[tuple[Any, ...]]:
    """Leaf paths of a fieldsV1 tree ('f:name' keys, 'k:{json}' list keys)."""
    paths = []
    for key, child in node.items():
        if key == ".":
            continue
        if key.startswith("f:"):
            step: Any = key[2:]
        elif key.startswith("k:"):
            step = json.loads(key[2:])
        else:
            continue  # v: (set values) are not under the watched paths
        children = {k: v for k, v in (child or {}).items() if k != "."}
        paths += _walk(children, (*prefix, step)) if children else [(*prefix, step)]
    return paths


def field_paths(entry: dict[str, Any]) -> set[tuple[Any, ...]]:
    """The leaf field paths one managedFields entry owns (hashable: list keys as sorted items)."""
    return {
        tuple(tuple(sorted(step.items())) if isinstance(step, dict) else step for step in path)
        for path in _walk(entry.get("fieldsV1") or {}, ())
    }


def _watched(path: tuple[Any, ...]) -> tuple[Any, ...] | None:
    """The watched part of `path` (down to the list item or field an addition is), or None."""
    for start in range(len(path)):
        if path[start] != "spec":
            continue
        rest = path[start + 1 :]
        container = len(rest) >= 3 and rest[0] in ("containers", "initContainers")
        container = container and isinstance(rest[1], dict)
        if container and rest[2] in _CONTAINER_FIELDS:
            keep = 4 if len(rest) > 3 and isinstance(rest[3], dict) else 3
            return path[: start + 1 + keep]
        if len(rest) >= 2 and rest[0] in _POD_FIELDS and isinstance(rest[1], dict):
            return path[: start + 3]
    return None


def _present(body: Any, path: tuple[Any, ...]) -> bool:
    node = body
    for step in path:
        if isinstance(step, dict):
            if not isinstance(node, list):
                return False
            node = next((i for i in node if all(i.get(k) == v for k, v in step.items())), None)
            if node is None:
                return False
        else:
            if not isinstance(node, dict) or step not in node:
                return False
            node = node[step]
    return True


def foreign_additions(bundle_body: dict[str, Any], live: dict[str, Any]) -> list[ForeignField]:
    """Fields other managers own under the watched paths of `live` that `bundle_body` does not set."""
    found: dict[tuple[str, str], ForeignField] = {}
    for entry in (live.get("metadata") or {}).get("managedFields") or []:
        manager = entry.get("manager", "")
        if manager == FIELD_MANAGER or entry.get("subresource"):
            continue
        for path in _walk(entry.get("fieldsV1") or {}, ()):
            watched = _watched(path)
            if watched is None or _present(bundle_body, watched):
                continue
            field = ForeignField(manager, watched)
            found.setdefault((manager, field.display), field)
    return sorted(found.values(), key=lambda f: (f.display, f.manager))


def _pointer(live: dict[str, Any], path: tuple[Any, ...]) -> str | None:
    """The JSON pointer of `path` in `live` (list items by their current index)."""
    node: Any = live
    parts = []
    for step in path:
        if isinstance(step, dict):
            index = next(
                (i for i, item in enumerate(node) if all(item.get(k) == v for k, v in step.items())), None
            )
            if index is None:
                return None
            parts.append(str(index))
            node = node[index]
        else:
            if step not in node:
                return None
            parts.append(str(step).replace("~", "~0").replace("/", "~1"))
            node = node[step]
    return "/" + "/".join(parts)


def removal_patch(live: dict[str, Any], fields: list[ForeignField]) -> list[dict[str, Any]]:
    """A JSON patch removing `fields` from `live`, guarded by a resourceVersion test; list items are
    removed from the highest index down so earlier removals do not shift later ones."""
    pointers = {p for p in (_pointer(live, f.path) for f in fields) if p}

    def order(pointer: str) -> tuple:
        return tuple(int(p) if p.isdigit() else -1 for p in pointer.split("/")[1:])

    ops: list[dict[str, Any]] = [
        {"op": "test", "path": "/metadata/resourceVersion", "value": live["metadata"]["resourceVersion"]}
    ]
    ops += [{"op": "remove", "path": p} for p in sorted(pointers, key=order, reverse=True)]
    return ops
