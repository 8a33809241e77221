"""Values kustomize dropped without a word: keys a source file gives a ConfigMap or Secret that
the rendered object no longer has (a generator with `behavior: replace`, a patch replacing `data`).

Each object's source file (its origin annotation) is read again and the object's document in it
found by kind and name (the rendered name holds the source name, whatever prefix or suffix). An
object a generator with `behavior: replace` made is compared with what the kustomizations that
generator's file includes gave it (their generators and resource files). An object a Helm chart
rendered (source `<chart>/templates/<file> (Helm template)`) is left alone: kustomize dropped
nothing from it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import yaml

from ..environments import EnvironmentSpec
from ..paths import project_root
from .findings import Finding
from .model import ManifestObject, RenderedBundle
from .tree import read_tree
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
        if not obj.source:
            continue  # no source known: nothing to compare
        if obj.from_helm_template:
            continue  # a Helm template's values come from the chart's values, not dropped by kustomize
        if " (" in obj.source:
            yield from _replaced_by_generator(bundle, obj, root)
            continue
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


_GENERATORS = {"ConfigMap": "configMapGenerator", "Secret": "secretGenerator"}


def _generated_keys(entry: dict, directory: Path) -> set[str]:
    """The keys a generator entry gives its object (literals, files, env files)."""
    keys = {str(item).split("=", 1)[0] for item in entry.get("literals") or []}
    keys |= {str(item).split("=", 1)[0] if "=" in str(item) else Path(str(item)).name
             for item in entry.get("files") or []}  # fmt: skip
    for env in [*(entry.get("envs") or []), *([entry["env"]] if entry.get("env") else [])]:
        lines = (directory / env).read_text().splitlines()
        keys |= {line.split("=", 1)[0].strip() for line in lines if "=" in line and not line.startswith("#")}
    return keys


def _replaced_by_generator(bundle: RenderedBundle, obj: ManifestObject, root: Path) -> Iterator[Finding]:
    """Keys the included kustomizations gave an object a `behavior: replace` generator replaced.

    Raises OSError or yaml.YAMLError when a file of the tree cannot be read (the references check
    then reports could-not-evaluate).
    """
    where = obj.source.split(" (", 1)[0]
    configured_in = root / where
    tree = read_tree(configured_in.parent)
    generators = [
        g for g in tree[0].body.get(_GENERATORS.get(obj.kind, ""), []) or []
        if g.get("behavior") == "replace" and str(g.get("name", "")) in obj.name
    ]  # fmt: skip
    for generator in generators:
        name, before = str(generator["name"]), {}
        for included in tree[1:]:
            directory = included.path.parent
            for entry in included.body.get(_GENERATORS[obj.kind]) or []:
                if entry.get("name") == name:
                    before.update(dict.fromkeys(_generated_keys(entry, directory), included.shown(root)))
            for resource in included.body.get("resources") or []:
                path = directory / str(resource)
                if path.is_file():
                    for doc in yaml.safe_load_all(path.read_text()):
                        if (
                            isinstance(doc, dict)
                            and doc.get("kind") == obj.kind
                            and ((doc.get("metadata") or {}).get("name") == name)
                        ):
                            shown = str(path.resolve().relative_to(root.resolve()))
                            before.update(dict.fromkeys(_keys(doc), shown))
        for key in sorted(set(before) - _keys(obj.body)):
            yield finding(
                "dropped-values", bundle, obj, f"data.{key}",
                f"{before[key]} sets {key}; the {_GENERATORS[obj.kind]} {name} with behavior: replace "
                f"in {where} dropped it",
            )  # fmt: skip
