"""Helm's error text as one line a person can act on: chart file, template and line, and the value.

Helm reports three kinds of chart error, each in its own shape:
- values that do not match `values.schema.json`: `- at '/api/replicas': got string, want integer`,
  one line per broken rule; the line names the values file and line that set the value, and the
  value given;
- a template that fails while executing: `llm-cost-ops/templates/hpa.yaml:35:10 executing ... at
  <.Values.x.y>: nil pointer ...`, or `execution error at (llm-cost-ops/templates/x.yaml:5:14):
  image.tag is required` from `required` and `fail`;
- a template that does not parse: `parse error at (llm-cost-ops/templates/pdb.yaml:26): ...`.
Template paths become paths of this checkout (`charts/llm-cost-ops/templates/hpa.yaml:35`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..config_yaml import line_of, read_yaml_tree
from ..errors import ConfigError
from ..redaction import redact

SCHEMA_FILE = "values.schema.json"
_SCHEMA_RULE = re.compile(r"^- at '(?P<pointer>[^']*)': (?P<rule>.+)$", re.MULTILINE)
_TEMPLATE_AT = re.compile(r"(?P<chart>[\w.-]+)/(?P<template>templates/[^\s:()]+):(?P<line>\d+)(?::\d+)?")
_VALUE_AT = re.compile(r"at <(?P<value>[^>]+)>")
_HEADS = ("execution error at ", "parse error at ", "template: ", "Error: ")


def _pointer_parts(pointer: str) -> list[str | int]:
    parts: list[str | int] = []
    for raw in pointer.strip("/").split("/") if pointer.strip("/") else []:
        part = raw.replace("~1", "/").replace("~0", "~")
        parts.append(int(part) if part.isdigit() else part)
    return parts


def _given(values: Any, parts: Sequence[str | int]) -> tuple[bool, Any]:
    node = values
    for part in parts:
        in_mapping = isinstance(node, Mapping) and part in node
        in_list = isinstance(node, list) and isinstance(part, int) and part < len(node)
        if in_mapping or in_list:
            node = node[part]
        else:
            return False, None
    return True, node


def _where_set(parts: Sequence[str | int], files: Sequence[tuple[Path, str]]) -> str:
    """`values-prod.yaml:12` for the first values file (most specific first) that sets the value."""
    for path, shown in files:
        try:
            data, tree = read_yaml_tree(path)
        except ConfigError:
            continue
        line = line_of(tree, parts)
        if line is not None and _given(data, parts)[0]:
            return f"{shown}:{line}"
    return files[-1][1] if files else ""


def schema_error_line(
    message: str, values: Mapping[str, Any], files: Sequence[tuple[Path, str]], chart_shown: str
) -> str | None:
    """The first broken schema rule as `<values file>:<line>: <path>: <rule> (given ...)`, or None
    when the text is not a schema error. `files` are (path, shown) of the values files, most
    specific first."""
    rules = list(_SCHEMA_RULE.finditer(message))
    if not rules:
        return None
    first = rules[0]
    parts = _pointer_parts(first["pointer"])
    field = ".".join(str(p) for p in parts) or "(top level)"
    found, value = _given(values, parts)
    given = f" (given: {value!r})" if found and not isinstance(value, Mapping | list) else ""
    more = f" (and {len(rules) - 1} more)" if len(rules) > 1 else ""
    where = _where_set(parts, files) if parts else (files[0][1] if files else "")
    return f"{where}: {field}: {first['rule']}{given}, against {chart_shown}/{SCHEMA_FILE}{more}".lstrip(": ")


def template_error_line(message: str, chart_shown: str) -> str:
    """A template error as `<chart>/templates/<file>:<line>: <message> (value <.Values...>)`."""
    text = " ".join(message.split())
    located = _TEMPLATE_AT.search(text)
    value = _VALUE_AT.search(text)
    detail = text
    if located:
        # What Helm says after the location: `...:35:10): msg` or `...:35:10 executing ... : msg`.
        tail = text[located.end() :].lstrip("):").strip()
        detail = tail.rsplit(": ", 1)[-1] if value else tail
        if not value:
            detail = detail.split("executing", 1)[0].strip() or tail
    for head in _HEADS:
        detail = detail.removeprefix(head)
    where = f"{chart_shown}/{located['template']}:{located['line']}: " if located else f"{chart_shown}: "
    shown_value = f" (value {value['value']})" if value else ""
    return f"{where}{detail}{shown_value}"


def chart_error_line(
    environment: str,
    message: str,
    values: Mapping[str, Any],
    files: Sequence[tuple[Path, str]],
    chart_shown: str,
    secrets: Sequence[str] = (),
) -> str:
    """One line for any Helm error while loading or rendering a chart, Secret values masked."""
    line = schema_error_line(message, values, files, chart_shown) or template_error_line(message, chart_shown)
    return redact(f"{environment}: helm chart {chart_shown}: {line}", secrets)
