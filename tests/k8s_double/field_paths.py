"""Field paths in the `fieldsV1` shape of `metadata.managedFields`: which paths an object sets,
how they nest, how conflict messages print them, and reading or removing the value at one.

Paths are tuples of fieldsV1 elements: `f:<field>` for map keys and `k:{...}` for items of keyed
lists (containers by name, ports by containerPort and protocol, ...). Other lists are atomic.
"""

from __future__ import annotations

import copy
import json

from .merge_keys import find_item, item_path_element, list_key

Path = tuple[str, ...]
MISSING = object()

# Identity and bookkeeping fields that nobody owns.
_UNOWNED_METADATA = {
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "managedFields",
    "selfLink",
    "generateName",
}


def scoped(obj: dict, scope: str) -> dict:
    """The part of `obj` a write in `scope` may change: "main" (all but status), "status", "all"."""
    if scope == "status":
        return {"status": copy.deepcopy(obj.get("status") or {})}
    return {k: copy.deepcopy(v) for k, v in obj.items() if not (scope == "main" and k == "status")}


def owned_paths(obj: dict | None, scope: str) -> set[Path]:
    """Every field path set in `obj` that a manager can own within `scope`."""
    top = {}
    for key, value in scoped(obj or {}, scope).items():
        if key in ("apiVersion", "kind"):
            continue
        if key == "metadata":
            value = {k: v for k, v in (value or {}).items() if k not in _UNOWNED_METADATA}
            if not value:
                continue
        top[key] = value
    return _leaves(top, ())


def _leaves(node: dict, prefix: Path) -> set[Path]:
    paths: set[Path] = set()
    for key, value in node.items():
        path = (*prefix, f"f:{key}")
        key_fields = list_key(key, value) if isinstance(value, list) else None
        if isinstance(value, dict) and value:
            paths |= _leaves(value, path)
        elif key_fields:
            for item in value:
                item_path = (*path, item_path_element(item, key_fields))
                paths.add(item_path)
                paths |= _leaves(item, item_path)
        else:
            paths.add(path)
    return paths


def to_fields_v1(paths: set[Path]) -> dict:
    """Nest paths into the fieldsV1 tree; a node that is owned itself and has children gets the
    `.` marker, listed first as the real server does."""
    root: dict = {}
    for path in sorted(paths):
        node = root
        for element in path:
            node = node.setdefault(element, {})
    for path in paths:
        parent, node = None, root
        for element in path:
            parent, node = node, node[element]
        if node and "." not in node and parent is not None:
            parent[path[-1]] = {".": {}, **node}
    return root


def from_fields_v1(tree: dict, prefix: Path = ()) -> set[Path]:
    paths: set[Path] = set()
    for element, child in (tree or {}).items():
        if element == ".":
            paths.add(prefix)
        elif child:
            paths |= from_fields_v1(child, (*prefix, element))
        else:
            paths.add((*prefix, element))
    return paths


def format_path(path: Path) -> str:
    """`.spec.template.spec.containers[name="app"].image`, as conflict messages print it."""
    text = ""
    for element in path:
        if element.startswith("f:"):
            text += "." + element[2:]
        else:
            identity = json.loads(element[2:])
            text += "[" + ",".join(f"{k}={json.dumps(v)}" for k, v in identity.items()) + "]"
    return text


def value_at(obj: object, path: Path) -> object:
    node = obj
    for element in path:
        if element.startswith("f:"):
            if not isinstance(node, dict) or element[2:] not in node:
                return MISSING
            node = node[element[2:]]
        else:
            index = find_item(node, json.loads(element[2:])) if isinstance(node, list) else None
            if index is None:
                return MISSING
            node = node[index]  # type: ignore[index]
    return node


def _delete(obj: dict, path: Path) -> None:
    parent = value_at(obj, path[:-1])
    last = path[-1]
    if last.startswith("f:") and isinstance(parent, dict):
        parent.pop(last[2:], None)
    elif isinstance(parent, list):
        index = find_item(parent, json.loads(last[2:]))
        if index is not None:
            parent.pop(index)


def remove_at(obj: dict, path: Path) -> None:
    """Remove the field or item at `path`, then maps and lists it left empty (below top level)."""
    _delete(obj, path)
    for depth in range(len(path) - 1, 1, -1):
        if value_at(obj, path[:depth]) not in ({}, []):
            break
        _delete(obj, path[:depth])


def is_item_key(path: Path) -> bool:
    """Whether `path` is a key field of a list item (`...k:{"name":"x"}, f:name`), which goes
    only with its item."""
    if len(path) < 2 or not path[-2].startswith("k:"):
        return False
    return path[-1][2:] in json.loads(path[-2][2:])
