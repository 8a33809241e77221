"""The kustomization files of an overlay's tree: what the render needs to know beyond its output.

kustomize's output does not say which file of the tree set an `images:` entry or used a deprecated
field, so the render reads the tree itself: the overlay's kustomization and every local base,
resource directory and component it includes, each once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ..errors import RenderError

KUSTOMIZATION_NAMES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
_INCLUDES = ("resources", "bases", "components")
_DEPRECATED = re.compile(r"'(\w+)' is deprecated")


@dataclass(frozen=True)
class KustomizationFile:
    """One kustomization (or Component) file of the tree and its parsed body."""

    path: Path
    body: dict[str, Any]

    def shown(self, root: Path) -> str:
        try:
            return str(self.path.resolve().relative_to(root.resolve()))
        except ValueError:
            return str(self.path)


def kustomization_file(directory: Path) -> Path | None:
    return next((directory / n for n in KUSTOMIZATION_NAMES if (directory / n).is_file()), None)


def read_tree(overlay: Path) -> list[KustomizationFile]:
    """The overlay's kustomization first, then every local kustomization it includes.

    Raises RenderError naming the file when a kustomization file is not a YAML mapping.
    """
    found: list[KustomizationFile] = []
    seen: set[Path] = set()
    pending = [overlay]
    while pending:
        directory = pending.pop(0)
        path = kustomization_file(directory)
        if path is None or path.resolve() in seen:
            continue
        seen.add(path.resolve())
        try:
            body = yaml.safe_load(path.read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise RenderError(f"{path}: cannot read the kustomization: {' '.join(str(exc).split())}") from exc
        if not isinstance(body, dict):
            raise RenderError(f"{path}: the kustomization is not a mapping")
        found.append(KustomizationFile(path, body))
        for key in _INCLUDES:
            for entry in body.get(key) or []:
                if isinstance(entry, str) and "://" not in entry and not entry.startswith("github.com"):
                    target = directory / entry
                    if target.is_dir():
                        pending.append(target)
    return found


def has_origin_annotations(tree: list[KustomizationFile]) -> bool:
    """True when the overlay itself asks kustomize to annotate each object with its origin."""
    return bool(tree) and "originAnnotations" in (tree[0].body.get("buildMetadata") or [])


def image_entries(tree: list[KustomizationFile], root: Path) -> tuple[dict[str, str], ...]:
    """Every `images:` entry of the tree, with the file that declares it (`file`)."""
    entries = []
    for kustomization in tree:
        for entry in kustomization.body.get("images") or []:
            if isinstance(entry, dict) and entry.get("name"):
                values = {k: str(v) for k, v in entry.items() if k in ("name", "newName", "newTag", "digest")}
                entries.append({"file": kustomization.shown(root), **values})
    return tuple(entries)


def attribute_warnings(stderr: str, tree: list[KustomizationFile], root: Path) -> tuple[str, ...]:
    """kustomize's warnings as `<file>: <message>`, each once, naming the file that caused it.

    A warning about a deprecated field goes to every file of the tree that uses the field; any
    other warning (or one no file explains) goes to the overlay's kustomization.
    """
    overlay_file = tree[0].shown(root) if tree else "kustomization.yaml"
    attributed: dict[str, None] = {}
    for line in stderr.splitlines():
        message = line.strip().removeprefix("# Warning:").strip()
        if not message:
            continue
        field = _DEPRECATED.search(message)
        files = [k.shown(root) for k in tree if field and field.group(1) in k.body]
        for where in files or [overlay_file]:
            attributed[f"{where}: {message}"] = None
    return tuple(attributed)
