"""Are two bundles of one environment the same objects? The kustomize tree and the Helm chart must be.

Only what is Helm's own is normalised away before comparing: the `helm.sh/chart` label, the
`app.kubernetes.io/managed-by: Helm` label, `meta.helm.sh/*` annotations, and the instance/version
labels Helm's scaffolding adds when they name the release or chart. Everything else must match,
field by field; each difference names the object and the field path.
"""

from __future__ import annotations

import copy
from typing import Any

from .model import POD_TEMPLATE_PATHS, ManifestObject, RenderedBundle

_HELM_LABELS = ("helm.sh/chart",)
_HELM_ANNOTATION_PREFIX = "meta.helm.sh/"


def _strip_helm_metadata(metadata: dict[str, Any]) -> None:
    labels = metadata.get("labels")
    if isinstance(labels, dict):
        for key in _HELM_LABELS:
            labels.pop(key, None)
        if labels.get("app.kubernetes.io/managed-by") == "Helm":
            del labels["app.kubernetes.io/managed-by"]
        if not labels:
            del metadata["labels"]
    annotations = metadata.get("annotations")
    if isinstance(annotations, dict):
        for key in [k for k in annotations if k.startswith(_HELM_ANNOTATION_PREFIX)]:
            del annotations[key]
        if not annotations:
            del metadata["annotations"]


def normalised(obj: ManifestObject) -> dict[str, Any]:
    """The object's body without what only Helm adds (top level and pod template metadata)."""
    body = copy.deepcopy(obj.body)
    _strip_helm_metadata(body.setdefault("metadata", {}))
    node: Any = body
    for key in POD_TEMPLATE_PATHS.get(obj.kind, ()):
        node = node.get(key) if isinstance(node, dict) else None
    if isinstance(node, dict) and isinstance(node.get("metadata"), dict):
        _strip_helm_metadata(node["metadata"])
    return body


def _field_diffs(left: Any, right: Any, path: str) -> list[tuple[str, Any, Any]]:
    if isinstance(left, dict) and isinstance(right, dict):
        out: list[tuple[str, Any, Any]] = []
        for key in sorted(set(left) | set(right), key=str):
            sub = f"{path}.{key}" if path else str(key)
            if key not in left or key not in right:
                out.append((sub, left.get(key, "<absent>"), right.get(key, "<absent>")))
            else:
                out += _field_diffs(left[key], right[key], sub)
        return out
    if isinstance(left, list) and isinstance(right, list) and len(left) == len(right):
        pairs = enumerate(zip(left, right, strict=True))
        return [d for i, (a, b) in pairs for d in _field_diffs(a, b, f"{path}[{i}]")]
    return [] if left == right else [(path or "(object)", left, right)]


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def bundle_differences(left: RenderedBundle, right: RenderedBundle, names: tuple[str, str]) -> list[str]:
    """Every difference between two renders of one environment, one line each:
    `Kind/namespace/name field: <left name> <value>, <right name> <value>`, or an object only one has.
    """

    def index(bundle: RenderedBundle) -> dict[tuple[str, str, str, str], ManifestObject]:
        return {(o.group, o.kind, o.namespace, o.name): o for o in bundle.objects}

    a, b = index(left), index(right)
    lines: list[str] = []
    for key in sorted(set(a) | set(b)):
        if key not in b:
            lines.append(f"{a[key].ref}: only in the {names[0]} render ({a[key].source or 'source unknown'})")
        elif key not in a:
            lines.append(f"{b[key].ref}: only in the {names[1]} render ({b[key].source or 'source unknown'})")
        else:
            for field, x, y in _field_diffs(normalised(a[key]), normalised(b[key]), ""):
                lines.append(f"{a[key].ref} {field}: {names[0]} {_short(x)}, {names[1]} {_short(y)}")
    return lines
