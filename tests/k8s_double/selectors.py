"""Label and field selectors with the syntax the real API server accepts."""

from __future__ import annotations

import re
from collections.abc import Callable

from .status import bad_request

Matcher = Callable[[dict], bool]

_SET_REQUIREMENT = re.compile(r"^([^\s!=(),]+)\s+(in|notin)\s+\(([^()]*)\)$")
_EQUALITY = re.compile(r"^([^\s!=(),]+)\s*(==|!=|=)\s*([^\s!=(),]*)$")
_EXISTS = re.compile(r"^(!?)\s*([^\s!=(),]+)$")

# Fields the real server indexes beyond metadata.name and metadata.namespace.
_EXTRA_FIELDS = {
    "Pod": {"spec.nodeName", "spec.restartPolicy", "spec.schedulerName", "status.phase"},
    "Event": {
        "involvedObject.kind",
        "involvedObject.name",
        "involvedObject.namespace",
        "involvedObject.uid",
        "involvedObject.apiVersion",
        "involvedObject.fieldPath",
        "reason",
        "type",
    },
    "Secret": {"type"},
    "Namespace": {"status.phase"},
}


def _split(selector: str) -> list[str]:
    """Split on commas that are not inside an `in (...)` value list."""
    parts, depth, current = [], 0, ""
    for char in selector:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            parts.append(current.strip())
            current = ""
        else:
            current += char
    parts.append(current.strip())
    return [part for part in parts if part]


def _requirement(text: str) -> Matcher:
    if match := _SET_REQUIREMENT.match(text):
        key, operator, raw = match.groups()
        values = {value.strip() for value in raw.split(",") if value.strip()}
        if operator == "in":
            return lambda labels: labels.get(key) in values
        return lambda labels: labels.get(key) not in values
    if match := _EQUALITY.match(text):
        key, operator, value = match.groups()
        if operator == "!=":
            return lambda labels: labels.get(key) != value
        return lambda labels: labels.get(key) == value
    if match := _EXISTS.match(text):
        negated, key = match.groups()
        if negated:
            return lambda labels: key not in labels
        return lambda labels: key in labels
    raise bad_request(f"unable to parse requirement: {text!r}")


def label_matcher(selector: str | None) -> Matcher:
    """A predicate over an object's labels; raises ApiError 400 on a malformed selector."""
    requirements = [_requirement(part) for part in _split(selector or "")]

    def matches(obj: dict) -> bool:
        labels = (obj.get("metadata") or {}).get("labels") or {}
        return all(requirement(labels) for requirement in requirements)

    return matches


def labels_match(selector: dict, labels: dict) -> bool:
    """Whether a structured LabelSelector (matchLabels and matchExpressions) selects `labels`."""
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions") or []:
        key, operator = expression["key"], expression["operator"]
        values = set(expression.get("values") or [])
        if operator == "In" and labels.get(key) not in values:
            return False
        if operator == "NotIn" and labels.get(key) in values:
            return False
        if operator == "Exists" and key not in labels:
            return False
        if operator == "DoesNotExist" and key in labels:
            return False
    return True


def _field_value(obj: dict, path: str) -> str:
    value: object = obj
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return "" if value is None else str(value)


def field_matcher(selector: str | None, kind: str) -> Matcher:
    """A predicate over indexed fields; raises ApiError 400 on an unsupported field."""
    allowed = {"metadata.name", "metadata.namespace"} | _EXTRA_FIELDS.get(kind, set())
    requirements: list[tuple[str, bool, str]] = []
    for part in _split(selector or ""):
        match = _EQUALITY.match(part)
        if not match:
            raise bad_request(f"invalid field selector: {part!r}")
        path, operator, value = match.groups()
        if path not in allowed:
            raise bad_request(f"field label not supported: {path}")
        requirements.append((path, operator != "!=", value))

    def matches(obj: dict) -> bool:
        return all((_field_value(obj, path) == value) is equal for path, equal, value in requirements)

    return matches
