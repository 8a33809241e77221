"""Inventory labels: how this project marks, and later finds, the objects it owns."""

from __future__ import annotations

import copy
from typing import Any

MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY = "llm-cost-ops-ops"
ENVIRONMENT_LABEL = "llm-cost-ops-ops/environment"


def inventory_labels(environment: str) -> dict[str, str]:
    return {MANAGED_BY_LABEL: MANAGED_BY, ENVIRONMENT_LABEL: environment}


def inventory_selector(environment: str) -> str:
    return ",".join(f"{k}={v}" for k, v in inventory_labels(environment).items())


def labelled(body: dict[str, Any], environment: str) -> dict[str, Any]:
    """A copy of `body` carrying the inventory labels (the overlays set them; this makes sure)."""
    out = copy.deepcopy(body)
    labels = out.setdefault("metadata", {}).setdefault("labels", {})
    labels.update(inventory_labels(environment))
    return out


def object_key(body: dict[str, Any]) -> tuple[str, str, str, str]:
    """(group, kind, namespace, name): the identity of an object across versions of one group."""
    group = str(body.get("apiVersion", "")).rpartition("/")[0]
    meta = body.get("metadata") or {}
    return group, str(body.get("kind")), str(meta.get("namespace") or ""), str(meta.get("name"))


def ref(body: dict[str, Any]) -> str:
    _, kind, namespace, name = object_key(body)
    return f"{kind}/{namespace}/{name}" if namespace else f"{kind}/{name}"
