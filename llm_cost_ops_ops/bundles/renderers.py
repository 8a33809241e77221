"""The one renderer interface: an environment's spec in, a RenderedBundle out.

`renderer:` in environments.yaml picks the implementation per environment: `kustomize` (the
overlay, through kubectl's kustomize; the default) or `helm` (the chart and its values file, through
Helm's Go SDK). Everything after the render (digest, store, checks, deploy, ledger, prune,
rollback, plan) sees only the bundle, so an environment can move between renderers without a
second source of truth.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from ..environments import EnvironmentSpec
from .helm import render_chart
from .model import RenderedBundle
from .render import render_overlay


class Renderer(Protocol):
    @property
    def name(self) -> str:
        """`kustomize` or `helm`, as environments.yaml spells it."""
        ...

    def render(self, spec: EnvironmentSpec, root: Path) -> RenderedBundle:
        """Render the environment; raises RenderError with one line naming the file."""
        ...


@dataclass(frozen=True)
class KustomizeRenderer:
    """`kubectl kustomize` of the environment's overlay."""

    kubectl: str | None = None
    name: str = "kustomize"

    def render(self, spec: EnvironmentSpec, root: Path) -> RenderedBundle:
        return render_overlay(spec.name, spec.overlay_path(root), root=root, kubectl=self.kubectl)


@dataclass(frozen=True)
class HelmRenderer:
    """The environment's chart with its values file, rendered offline into its namespace."""

    name: str = "helm"

    def render(self, spec: EnvironmentSpec, root: Path) -> RenderedBundle:
        return render_chart(
            spec.name,
            spec.chart_path(root),
            spec.chart_values_path(root),
            namespace=spec.namespace,
            root=root,
        )


def renderer_for(spec: EnvironmentSpec, *, kubectl: str | None = None) -> Renderer:
    """The renderer the environment asks for (`renderer:` in environments.yaml)."""
    return HelmRenderer() if spec.renderer == "helm" else KustomizeRenderer(kubectl)


def render_environment(spec: EnvironmentSpec, root: Path, *, kubectl: str | None = None) -> RenderedBundle:
    """Render one environment with its renderer. Raises RenderError (one line naming the file)."""
    return renderer_for(spec, kubectl=kubectl).render(spec, root)


def main(argv: list[str] | None = None) -> int:
    """`python -m llm_cost_ops_ops.bundles.renderers ENV [--renderer kustomize|helm]`: print the
    environment's bundle (canonical YAML) rendered with its renderer or the one given."""
    import argparse
    import sys

    from ..environments import environment_named, load_environments
    from ..errors import OpsError
    from ..paths import project_root

    parser = argparse.ArgumentParser(prog="python -m llm_cost_ops_ops.bundles.renderers")
    parser.add_argument("environment")
    parser.add_argument("--renderer", choices=["kustomize", "helm"], help="default: the environment's")
    args = parser.parse_args(argv)
    root = project_root()
    try:
        path = root / "environments.yaml"
        spec = environment_named(load_environments(path), args.environment, path)
        if args.renderer:
            spec = spec.model_copy(update={"renderer": args.renderer})
        bundle = render_environment(spec, root)
    except OpsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    sys.stdout.write(bundle.text)
    print(f"# {bundle.environment}: {len(bundle.objects)} objects, {bundle.digest}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
