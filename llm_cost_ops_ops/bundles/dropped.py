"""Values kustomize dropped without a word: keys a source file gives a ConfigMap or Secret that
the rendered object no longer has (a generator with `behavior: replace`, a patch replacing `data`).

Each object's source file (its origin annotation) is read again and the object's document in it
found by kind and name (the rendered name holds the source name, whatever prefix or suffix).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import yaml

from ..environments import EnvironmentSpec
from ..paths import project_root
from .findings import Finding
from .model import ManifestObject, RenderedBundle
from .workload_refs import finding

_SECTIONS = ("data", "stringData", "binaryData")


def _keys(body: dict) -> set[str]:
    return {key for section in _SECTIONS for key in (body.get(section) or {})}


def _source_document(obj: ManifestObject, root: Path) -> dict | None:
    """The object's document in its source file. Raises OSError or yaml.YAMLError when unreadable."""
    documents = [d for d in yaml.safe_load_all((root / obj.source).read_text()) if isinstance(d, dict)]
    named = [
        d for d in documents
        if d.get("kind") == obj.kind and str((d.get("metadata") or {}).get("name", "")) in obj.name
    ]  # fmt: skip
    return max(named, key=lambda d: len(str(d["metadata"]["name"])), default=None)


def values_not_dropped(bundle: RenderedBundle, spec: EnvironmentSpec) -> Iterator[Finding]:
    """Every key a ConfigMap or Secret has in its source file is still there after the render."""
    root = project_root()
    for obj in bundle.of_kind("ConfigMap", "Secret"):
        if not obj.source or " (" in obj.source:
            continue  # no source known, or made by a generator: nothing to compare
        try:
            document = _source_document(obj, root)
        except (OSError, yaml.YAMLError) as exc:
            yield finding(
                "dropped-values", bundle, obj, "", f"cannot read its source {obj.source} to compare: {exc}"
            )
            continue
        if document is None:
            yield finding("dropped-values", bundle, obj, "", f"cannot find it in its source {obj.source}")
            continue
        for key in sorted(_keys(document) - _keys(obj.body)):
            section = next(s for s in _SECTIONS if key in (document.get(s) or {}))
            yield finding(
                "dropped-values", bundle, obj, f"{section}.{key}",
                f"{obj.source} sets {key}, the rendered object no longer has it (replaced by a "
                "generator or patch?)",
            )  # fmt: skip
