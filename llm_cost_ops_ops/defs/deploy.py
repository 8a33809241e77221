"""Per-environment deploy and rollback: the `<env>_deployed` asset, its jobs and run config.

`<env>_deployed` is materialized by a healthy release only. Plan mode (asked for: `mode: plan`,
the `jobs/deploy/*.plan.yaml` run configs) and dry runs log an observation with what would happen
and materialize nothing. A deploy whose cluster cannot be reached fails naming the kubeconfig or
context it tried; it never turns into a plan.
"""

# No `from __future__ import annotations`: Dagster reads the config classes from the annotations.
from collections.abc import Callable
from typing import Literal

import dagster as dg
from pydantic import Field

from ..bundles.model import RenderedBundle
from ..environments import EnvironmentSpec
from ..k8s.plan import plan_deploy
from .backup_storage import BackupStorageResource
from .databases import DatabaseResource
from .keys import NO_RETRY_TAGS, deployed_key, env_pool, env_tags, manifests_key, schema_key
from .kubernetes import KubernetesResource
from .records import expected_cluster
from .resources import PlatformManifests, bundle_store, latest_digest


class DeployConfig(dg.Config):
    mode: Literal["apply", "plan", "dry-run"] = Field(
        default="apply",
        description="apply (fails when the cluster cannot be reached), dry-run (server-side, writes "
        "nothing), or plan (no cluster: the waves and the diff against the last release).",
    )
    force_conflicts: bool = Field(default=False, description="Take ownership of fields other managers own.")
    adopt: bool = Field(
        default=False,
        description="Take over an environment another tool applied (kubectl apply -k): every object "
        "applied with force, the client-side-apply record dropped; each is reported `adopted`.",
    )
    prune: bool = Field(default=True, description="Delete inventory objects that left the bundle.")
    confirm_prune: list[str] = Field(
        default=[],
        description="Protected kinds (PersistentVolumeClaim, Namespace, Secret) or Kind/ns/name to prune.",
    )
    promotion_gate: bool = Field(default=True, description="Enforce the environment's promotion_from gate.")
    rollout_deadline_seconds: float | None = Field(
        default=None, gt=0, description="Override the environment's rollout deadline (workloads)."
    )
    database_deadline_seconds: float | None = Field(
        default=None, gt=0, description="Override the environment's database wait (its own deadline)."
    )
    poll_seconds: float | None = Field(default=None, gt=0, description="Override the rollout poll interval.")


class RollbackConfig(dg.Config):
    to_revision: int | None = Field(
        default=None, description="Default: the last healthy release before the current."
    )
    force_conflicts: bool = False
    prune: bool = True
    confirm_prune: list[str] = Field(default=[])
    rollout_deadline_seconds: float | None = Field(default=None, gt=0)
    database_deadline_seconds: float | None = Field(default=None, gt=0)
    poll_seconds: float | None = Field(default=None, gt=0)


def _or_spec(override: float | None, spec_value: float) -> float:
    """A run-config override when one is given (None: not given), else the environment's value."""
    return spec_value if override is None else override


def _options(spec: EnvironmentSpec, config: DeployConfig | RollbackConfig, dry_run: bool):
    from ..k8s.engine import DeployOptions
    from ..k8s.wait import WaitTiming

    poll = _or_spec(config.poll_seconds, spec.deploy.poll_seconds)
    rollout = _or_spec(config.rollout_deadline_seconds, spec.deploy.rollout_deadline_seconds)
    database = _or_spec(config.database_deadline_seconds, spec.deploy.database_deadline_seconds)
    return DeployOptions(
        dry_run=dry_run,
        force_conflicts=config.force_conflicts or spec.deploy.force_conflicts,
        manage_namespace=spec.deploy.manage_namespace,
        prune=config.prune,
        confirm_prune=frozenset(config.confirm_prune),
        adopt=getattr(config, "adopt", False),
        rollout=WaitTiming(rollout, poll),
        database=WaitTiming(database, poll),
    )


def _release_metadata(result, release) -> dict:
    return {
        "revision": release.revision,
        "operation": release.operation,
        "digest": release.digest,
        "images": release.images,
        "outcomes": result.counts(),
        "writes": result.writes,
        "wave_seconds": {w.name: w.seconds for w in result.waves},
        "warnings": result.warnings,
        "objects": dg.MetadataValue.md(result.table()),
        "cluster": release.cluster,
        **({"rollback_of": release.rollback_of} if release.rollback_of else {}),
    }


def _lease_seconds(spec: EnvironmentSpec) -> int:
    """Long enough for every wait a deploy can make (database, migrations, API, two monitoring
    workloads), so the Lease never expires under a live deploy."""
    deploy = spec.deploy
    waits = (
        deploy.database_deadline_seconds
        + spec.migrations.deadline_seconds
        + 3 * deploy.rollout_deadline_seconds
    )
    return int(waits + 600)


def _connect(kubernetes: KubernetesResource, spec: EnvironmentSpec):
    """The environment's cluster; raises NotConfigured naming the environment, the kubeconfig or
    context tried and what to set (never retried: the same settings fail the same way)."""
    from ..k8s.errors import NotConfigured

    try:
        return kubernetes.connect(spec.deploy.kube_context)
    except NotConfigured as exc:
        raise NotConfigured(f"{spec.name}: cannot reach its cluster: {exc}") from None


def _migration_hook(context, spec, bundle, databases, kubernetes, backups) -> Callable[[], dict]:
    """The deploy's migration wave: after the database is ready, before the API rolls out. It
    records `<env>_schema` as materialized by this run."""

    def hook() -> dict:
        from ..k8s.releases import app_images
        from .backups import backup_gate
        from .retries import retried_only_when_transient
        from .schema import run_migrations

        image = next(iter(sorted(app_images(bundle.images()))), "")
        gate = backup_gate(spec, backups, databases, kubernetes)
        # A missing DSN or a refused gate fails the deploy at once, never through a retry.
        with retried_only_when_transient():
            step = run_migrations(context, spec, databases, kubernetes, image=image, gate=gate)
        context.log_event(dg.AssetMaterialization(asset_key=schema_key(spec.name), metadata=step))
        return step

    return hook


def deploy_definitions(
    spec: EnvironmentSpec,
    specs: dict[str, EnvironmentSpec],
    *,
    after_rollback: dg.OpDefinition | None = None,
) -> dg.Definitions:
    """The deployed asset, deploy job and rollback job of one environment. `after_rollback`, an op
    with one Nothing input named `after` (the smoke step), ends the rollback job when given."""
    env = spec.name
    key = deployed_key(env)
    loaded = spec

    @dg.asset(
        key=key,
        ins={"bundle": dg.AssetIn(manifests_key(env))},
        group_name=env,
        kinds={"kubernetes"},
        tags={"env": env},
        output_required=False,
        pool=env_pool(env),
        description=(
            f"The release running in `{spec.namespace}`: the {env} bundle dry-run, server-side applied in "
            "waves, waited on and pruned; recorded in the in-cluster release ledger."
        ),
    )
    def _deployed(
        context: dg.AssetExecutionContext,
        config: DeployConfig,
        bundle: RenderedBundle,
        kubernetes: KubernetesResource,
        databases: DatabaseResource,
        backups: BackupStorageResource,
        manifests: PlatformManifests,
    ):
        # The run's environments.yaml, the one its bundle was rendered and checked with.
        spec = manifests.run_environment(loaded)
        mode = config.mode
        if mode == "plan":
            previous_digest = latest_digest(context.instance, key)
            previous = bundle_store(context.instance).get(previous_digest) if previous_digest else None
            plan = plan_deploy(bundle, previous)
            context.log.info(f"plan for {env}: {plan.counts()} (no cluster calls, nothing written)")
            context.log_event(
                dg.AssetObservation(
                    asset_key=key,
                    metadata={
                        "mode": "plan",
                        "digest": bundle.digest,
                        "previous_digest": plan.previous_digest or "none",
                        "changes": plan.counts(),
                        "waves": plan.waves,
                        "plan": dg.MetadataValue.md(plan.table()),
                    },
                )
            )
            return
        from ..k8s.ledger import ReleaseLedger
        from ..k8s.releases import ReleaseRequest, check_promotion, execute_release
        from .preflight import preflight
        from .promotion import check_promoted_checks

        kube = _connect(kubernetes, spec)
        source = spec.deploy.promotion_from
        if source and config.promotion_gate and mode == "apply":
            source_spec = specs[source]
            source_kube = _connect(kubernetes, source_spec)
            passed = check_promotion(
                ReleaseLedger(source_kube, source, source_spec.namespace), bundle.images()
            )
            checks = check_promoted_checks(context.instance, source, passed)
            context.log.info(
                f"promotion gate: {source} runs these images healthily in r{passed.revision}, "
                f"its checks passed: {', '.join(checks)}"
            )
        request = ReleaseRequest.for_bundle(
            bundle,
            spec.namespace,
            context.run.run_id,
            _options(spec, config, mode == "dry-run"),
            history=spec.deploy.history,
            lease_seconds=_lease_seconds(spec),
        )
        hooks = {}
        if spec.migrations.mode != "off":
            if mode == "apply":
                # What the migration wave will need is checked now, before the first write.
                for line in preflight(spec, bundle, databases, backups):
                    context.log.info(f"preflight: {line}")
            hooks["migrate"] = _migration_hook(context, spec, bundle, databases, kubernetes, backups)
        result, release = execute_release(
            kube,
            request,
            hooks=hooks,
            log=context.log.info,
            warn=context.log.warning,
            expected_cluster=expected_cluster(context.instance, spec),
        )
        if release is None:
            context.log_event(
                dg.AssetObservation(
                    asset_key=key,
                    metadata={
                        "mode": "dry-run",
                        "digest": bundle.digest,
                        "outcomes": result.counts(),
                        "objects": dg.MetadataValue.md(result.table()),
                        "warnings": result.warnings,
                    },
                )
            )
            return
        from ..k8s.drift import drift_after_deploy

        # The run's drift check reads the drift from this deploy's plan instead of dry-running again.
        measured = drift_after_deploy(kube, env, release, result)
        if measured is not None:
            kubernetes.remember_drift(measured)
        yield dg.MaterializeResult(metadata=_release_metadata(result, release))

    @dg.op(
        name=f"rollback_release_{env}",
        pool=env_pool(env),
        description=f"Re-apply the last healthy {env} release's stored bundle and record it as a rollback.",
    )
    def _rollback(context: dg.OpExecutionContext, config: RollbackConfig, kubernetes: KubernetesResource):
        from ..k8s.ledger import ReleaseLedger
        from ..k8s.releases import execute_release, rollback_request

        kube = kubernetes.connect(spec.deploy.kube_context)
        ledger = ReleaseLedger(kube, env, spec.namespace, spec.deploy.history)
        request, target = rollback_request(
            ledger, context.run.run_id, _options(spec, config, False), spec.namespace, config.to_revision
        )
        context.log.info(f"rolling {env} back to r{target.revision} ({target.digest})")
        bundle_store(context.instance).put(RenderedBundle.from_text(env, target.bundle))
        result, release = execute_release(
            kube,
            request,
            log=context.log.info,
            warn=context.log.warning,
            expected_cluster=expected_cluster(context.instance, spec),
        )
        context.log_event(dg.AssetMaterialization(asset_key=key, metadata=_release_metadata(result, release)))

    deploy_job = dg.define_asset_job(
        f"deploy_{env}",
        selection=dg.AssetSelection.assets(manifests_key(env), key),
        description=f"Render and check the {env} bundle, then dry-run, apply in waves, wait, prune and "
        "record a release; fails when the cluster cannot be reached (plan only with mode: plan).",
        tags={**env_tags(env, "deploy"), **NO_RETRY_TAGS},
    )

    @dg.job(
        name=f"rollback_{env}",
        tags={**env_tags(env, "rollback"), **NO_RETRY_TAGS},
        description=f"Roll {env} back to its last healthy release (or a chosen revision).",
    )
    def rollback_job():
        rolled_back = _rollback()
        if after_rollback is not None:
            after_rollback(after=rolled_back)

    return dg.Definitions(assets=[_deployed], jobs=[deploy_job, rollback_job])
