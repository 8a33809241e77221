"""Render a Helm chart into a RenderedBundle with Helm's own Go SDK (`helm-python-sdk`, no binary).

The SDK is young (alpha), so it is pinned in uv.lock and this is the only module that imports it:
everything after the render sees a RenderedBundle, as it does for kustomize. The chart's defaults
(`values.yaml`) are merged by Helm with the environment's values file; Helm validates the result
against `values.schema.json` before it renders. Rendering is offline and installs nothing: the
project's ledger, not Helm's release Secrets, is the release history.

Each object names its template as its source (`charts/llm-cost-ops/templates/deployment.yaml (Helm
template)`: generated, so checks that re-read source files leave it alone). Test hooks
(`helm.sh/hook: test`) and every other hook are left out of the bundle: only `helm test` runs them.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import helm_python
import yaml

from ..config_yaml import read_yaml
from ..errors import ConfigError, RenderError
from .helm_errors import chart_error_line
from .model import HELM_TEMPLATE_SUFFIX, ManifestObject, RenderedBundle, load_documents

HOOK_ANNOTATION = "helm.sh/hook"
RELEASE_NAME = "llm-cost-ops"
SOURCE_SUFFIX = HELM_TEMPLATE_SUFFIX


def _shown(path: Path, root: Path) -> str:
    try:
        return str(path.resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path)


def read_values(environment: str, values_file: Path, root: Path) -> dict[str, Any]:
    """The environment's values file as a mapping. Raises RenderError naming the file."""
    try:
        values = read_yaml(values_file)
    except ConfigError as exc:
        raise RenderError(f"{environment}: helm values {exc}") from None
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise RenderError(f"{environment}: helm values {_shown(values_file, root)}: not a mapping")
    return values


_LITERAL_VALUE = re.compile(r"^\s+[A-Za-z0-9_.-]+:\s+(?P<value>[^\s#{][^#]*?)\s*$")


def _placeholder_secrets(chart: Path) -> list[str]:
    """Values written literally in the chart's Secret templates, masked in any error line."""
    found: list[str] = []
    for template in (chart / "templates").rglob("*.yaml"):
        text = template.read_text(errors="replace")
        if re.search(r"^kind: Secret$", text, flags=re.M):
            found += [m["value"] for m in map(_LITERAL_VALUE.match, text.splitlines()) if m]
    return [value for value in found if "changeme" in value]


def _objects(environment: str, rendered: dict[str, str], chart_shown: str) -> list[ManifestObject]:
    objects: list[ManifestObject] = []
    seen: dict[tuple[str, str, str, str], str] = {}
    for template, text in sorted(rendered.items()):
        if not template.endswith((".yaml", ".yml")):
            continue  # NOTES.txt and the like
        source = f"{chart_shown}/{template.split('/', 1)[1]}"
        try:
            documents = load_documents(text)
        except yaml.YAMLError as exc:
            raise RenderError(
                f"{environment}: helm chart {source}: rendered text is not YAML: {' '.join(str(exc).split())}"
            ) from None
        for index, body in enumerate(documents):
            if not isinstance(body, dict):
                raise RenderError(f"{environment}: helm chart {source}: document {index} is not a mapping")
            if HOOK_ANNOTATION in ((body.get("metadata") or {}).get("annotations") or {}):
                continue
            obj = ManifestObject(body, source + SOURCE_SUFFIX)
            for key in ("apiVersion", "kind"):
                if not body.get(key):
                    raise RenderError(f"{environment}: helm chart {source}: object has no {key}")
            if not obj.name:
                raise RenderError(f"{environment}: helm chart {source}: {obj.kind} has no metadata.name")
            identity = (obj.group, obj.kind, obj.namespace, obj.name)
            if identity in seen:
                raise RenderError(
                    f"{environment}: duplicate object {obj.ref} in {seen[identity]} and {source}"
                )
            seen[identity] = source
            objects.append(obj)
    return objects


def render_chart(
    environment: str,
    chart: Path,
    values_file: Path,
    *,
    namespace: str,
    root: Path,
    release: str = RELEASE_NAME,
) -> RenderedBundle:
    """Render the chart with the environment's values into `namespace`.

    Raises RenderError with one line naming the environment, the chart file (template and line
    where Helm gives them) and the value, when the chart or values file is missing or unreadable,
    the values do not match values.schema.json, or a template fails.
    """
    chart_shown = _shown(chart, root)
    if not (chart / "Chart.yaml").is_file():
        raise RenderError(f"{environment}: helm chart {chart_shown} not found (no Chart.yaml there)")
    values = read_values(environment, values_file, root)
    files = [(values_file, _shown(values_file, root)), (chart / "values.yaml", f"{chart_shown}/values.yaml")]
    try:
        with helm_python.Chart.load(chart) as loaded:
            rendered = loaded.render(values=values, name=release, namespace=namespace)
    except helm_python.HelmError as exc:
        line = chart_error_line(
            environment, str(exc), values, files, chart_shown, _placeholder_secrets(chart)
        )
        raise RenderError(line) from None
    return RenderedBundle.from_objects(environment, _objects(environment, rendered, chart_shown))
