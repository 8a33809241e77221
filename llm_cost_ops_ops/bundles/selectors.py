"""Kubernetes label-selector matching (matchLabels and matchExpressions): the one judge of
whether a selector picks a set of labels, for every check."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def selector_matches(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """True when `labels` satisfy the selector; an empty selector matches everything.

    Raises ValueError for an operator Kubernetes does not define (the check then cannot judge).
    """
    if not selector:
        return True
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and labels.get(key) in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
        if op not in ("In", "NotIn", "Exists", "DoesNotExist"):
            raise ValueError(f"unknown selector operator {op!r} for key {key!r}")
    return True


def labels_match(selector: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    """A Service-style selector (a plain map): every pair present in `labels`; empty selects none."""
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def is_empty_selector(selector: Mapping[str, Any] | None) -> bool:
    return not selector or (not selector.get("matchLabels") and not selector.get("matchExpressions"))


def selector_string(selector: Mapping[str, Any] | None) -> str:
    """A LabelSelector (matchLabels and matchExpressions) as the API's `labelSelector` query string.

    Raises ValueError for an operator Kubernetes does not define.
    """
    parts = [f"{k}={v}" for k, v in sorted(((selector or {}).get("matchLabels") or {}).items())]
    for expr in (selector or {}).get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], sorted(expr.get("values") or [])
        if op == "In":
            parts.append(f"{key} in ({','.join(values)})")
        elif op == "NotIn":
            parts.append(f"{key} notin ({','.join(values)})")
        elif op == "Exists":
            parts.append(key)
        elif op == "DoesNotExist":
            parts.append(f"!{key}")
        else:
            raise ValueError(f"unknown selector operator {op!r} for key {key!r}")
    return ",".join(parts)
