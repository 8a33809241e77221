"""The three PATCH bodies a client can send besides apply: JSON merge patch (RFC 7386),
strategic merge patch (merge lists by key, `$patch` directives) and JSON patch (RFC 6902)."""

from __future__ import annotations

import copy

from .merge_keys import find_item, item_identity, list_key


class PatchError(ValueError):
    """The patch cannot be applied to the object."""


def merge_patch(target: object, patch: object) -> object:
    """RFC 7386: maps merge recursively, null deletes, everything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def strategic_merge_patch(target: object, patch: object) -> object:
    """Like merge patch, but keyed lists (containers, env, ports, ...) merge item by item."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if patch.get("$patch") == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
    if patch.get("$patch") == "delete":
        return None
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if key.startswith("$setElementOrder/") or key in ("$retainKeys", "$patch"):
            continue
        if key.startswith("$deleteFromPrimitiveList/"):
            field = key.split("/", 1)[1]
            result[field] = [item for item in result.get(field) or [] if item not in value]
            continue
        if value is None:
            result.pop(key, None)
        elif isinstance(value, list) and isinstance(result.get(key), list):
            result[key] = _merge_list(key, result[key], value)
        else:
            merged = strategic_merge_patch(result.get(key), value)
            if merged is None:
                result.pop(key, None)
            else:
                result[key] = merged
    return result


def _merge_list(field: str, current: list, patch: list) -> list:
    plain = [copy.deepcopy(item) for item in patch if not (isinstance(item, dict) and "$patch" in item)]
    key = list_key(field, patch)
    if key is None or any(item.get("$patch") == "replace" for item in patch):
        return plain
    result = copy.deepcopy(current)
    for item in patch:
        index = find_item(result, item_identity(item, key))
        if item.get("$patch") == "delete":
            if index is not None:
                result.pop(index)
        elif index is None:
            result.append(copy.deepcopy(item))
        else:
            result[index] = strategic_merge_patch(result[index], item)
    return result


def json_patch(target: dict, operations: list) -> dict:
    """RFC 6902 add/remove/replace/move/copy/test on a copy of `target`."""
    document = copy.deepcopy(target)
    for operation in operations:
        op, path = operation.get("op"), operation.get("path", "")
        if op == "add":
            document = _put(document, path, copy.deepcopy(operation["value"]), insert=True)
        elif op == "replace":
            _get(document, path)
            document = _put(document, path, copy.deepcopy(operation["value"]), insert=False)
        elif op == "remove":
            document = _remove(document, path)[0]
        elif op in ("move", "copy"):
            value = _get(document, operation["from"])
            if op == "move":
                document = _remove(document, operation["from"])[0]
            document = _put(document, path, copy.deepcopy(value), insert=True)
        elif op == "test":
            if _get(document, path) != operation.get("value"):
                raise PatchError(f"testing value {path} failed")
        else:
            raise PatchError(f"unexpected kind: {op}")
    return document


def _tokens(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise PatchError(f"invalid JSON pointer: {path!r}")
    return [part.replace("~1", "/").replace("~0", "~") for part in path[1:].split("/")]


def _parent(document: object, path: str) -> tuple[object, str]:
    tokens = _tokens(path)
    if not tokens:
        raise PatchError("cannot operate on the whole document")
    node = document
    for token in tokens[:-1]:
        node = _child(node, token, path)
    return node, tokens[-1]


def _child(node: object, token: str, path: str) -> object:
    try:
        if isinstance(node, list):
            return node[int(token)]
        if isinstance(node, dict):
            return node[token]
    except (KeyError, IndexError, ValueError):
        pass
    raise PatchError(f"doc is missing path: {path}")


def _get(document: object, path: str) -> object:
    node = document
    for token in _tokens(path):
        node = _child(node, token, path)
    return node


def _put(document: dict, path: str, value: object, *, insert: bool) -> dict:
    parent, token = _parent(document, path)
    if isinstance(parent, list):
        index = len(parent) if token == "-" else int(token)
        if insert:
            parent.insert(index, value)
        else:
            parent[index] = value
    elif isinstance(parent, dict):
        parent[token] = value
    else:
        raise PatchError(f"doc is missing path: {path}")
    return document


def _remove(document: dict, path: str) -> tuple[dict, object]:
    parent, token = _parent(document, path)
    value = _child(parent, token, path)
    if isinstance(parent, list):
        parent.pop(int(token))
    elif isinstance(parent, dict):
        parent.pop(token)
    return document, value
