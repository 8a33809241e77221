"""Smoke tests as blocking asset checks on `<env>_deployed`, the `smoke_test_<env>` job, and the
smoke step that ends a rollback.

The checks run after every materialization of `<env>_deployed` in `deploy_<env>` (a deploy job
selects its asset's checks); a rollback, an op job, ends with `smoke_after_rollback_<env>`, which
records the same checks and fails the run when one fails.
"""

# No `from __future__ import annotations`: Dagster reads context and resource annotations.

from pathlib import Path
from typing import Literal

import dagster as dg
from pydantic import Field

from ..environments import EnvironmentSpec
from ..k8s.errors import KubernetesError
from ..k8s.releases import app_images
from ..paths import project_root
from ..smoke.checks import version_of_image
from ..smoke.database import latest_migration_version
from ..smoke.endpoints import EndpointResolver, running_in_cluster
from ..smoke.http import HttpProbe
from ..smoke.portforward import KubernetesForwarder
from ..smoke.results import CheckResult, SmokeError
from ..smoke.suite import DESCRIPTIONS, SmokeTarget, check_names, run_smoke
from .keys import deployed_key
from .kubernetes import KubernetesResource


class SmokeResource(dg.ConfigurableResource):
    """How smoke tests reach an environment. URLs come from environments.yaml (`operations`)."""

    location: Literal["auto", "in-cluster", "outside"] = Field(
        default="auto", description="Where Dagster runs: auto reads KUBERNETES_SERVICE_HOST."
    )
    database_url: str = Field(
        default="", description="Override the application's DATABASE_URL Secret (a secret: dg.EnvVar)."
    )
    api_token: str = Field(default="", description="Bearer token for the write check (a secret: dg.EnvVar).")
    migrations_dir: str = Field(default="", description="sqlx migrations (default: <project>/migrations).")

    def inside_cluster(self) -> bool:
        return running_in_cluster() if self.location == "auto" else self.location == "in-cluster"

    def expected_migration(self) -> int | None:
        return latest_migration_version(
            Path(self.migrations_dir) if self.migrations_dir else project_root() / "migrations"
        )

    def probe(self, spec: EnvironmentSpec) -> HttpProbe:
        headers = {"Authorization": f"Bearer {self.api_token}"} if self.api_token else None
        return HttpProbe(spec.operations.smoke_latency_budget_seconds, headers=headers)


def expected_version(instance: dg.DagsterInstance, environment: str) -> str | None:
    """The application version of the image the latest release of `<env>_deployed` runs."""
    event = instance.get_latest_materialization_event(deployed_key(environment))
    materialization = event.asset_materialization if event else None
    images = materialization.metadata.get("images") if materialization else None
    found = sorted(app_images(list(images.value))) if images is not None else []  # type: ignore[arg-type]
    return version_of_image(found[0]) if found else None


def smoke_results(
    instance: dg.DagsterInstance, spec: EnvironmentSpec, smoke: SmokeResource, kubernetes: KubernetesResource
) -> list[CheckResult]:
    """Run the environment's smoke suite; a setup problem fails every check with its reason."""
    inside = smoke.inside_cluster()
    kube, forwarder = None, None
    try:
        try:
            kube = kubernetes.connect(spec.deploy.kube_context) if kubernetes.configured() else None
            forwarder = KubernetesForwarder(kube) if kube is not None and not inside else None
            resolver = EndpointResolver(spec, inside_cluster=inside, forwarder=forwarder)
            endpoints = resolver.endpoints()
        except (SmokeError, KubernetesError) as exc:
            return [
                CheckResult(name, False, "a reachable endpoint", str(exc), details={"evaluated": False})
                for name in check_names(spec)
            ]
        dsn, problem = smoke.database_url or None, ""
        if dsn is None:
            try:
                dsn = resolver.application_dsn(kube) if kube is not None else None
                problem = (
                    "" if dsn else f"{spec.name}: no cluster to read the application's DATABASE_URL from"
                )
            except (SmokeError, KubernetesError) as exc:
                problem = str(exc)
        target = SmokeTarget(
            endpoints, expected_version(instance, spec.name), dsn, smoke.expected_migration(), problem
        )
        with smoke.probe(spec) as http:
            return run_smoke(spec, target, http)
    finally:
        if forwarder is not None:
            forwarder.close()


def _check_result(environment: str, result: CheckResult) -> dg.AssetCheckResult:
    """A smoke check that could not run is not evaluated, never a pass; it stays ERROR, blocking:
    a release no probe reached is not proven healthy."""
    evaluated = result.details.get("evaluated", True)
    description = None if result.passed else str(result)
    if not evaluated:
        description = f"not evaluated: {result.name} could not run: {result.seen}"
    return dg.AssetCheckResult(
        asset_key=deployed_key(environment),
        check_name=result.name,
        passed=result.passed and evaluated,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={**result.metadata(), "evaluated": evaluated},
        description=description,
    )


def smoke_after_rollback(spec: EnvironmentSpec) -> dg.OpDefinition:
    """The op that ends `rollback_<env>`: the smoke checks, recorded on `<env>_deployed`."""
    env = spec.name

    @dg.op(name=f"smoke_after_rollback_{env}", ins={"after": dg.In(dg.Nothing)}, tags={"env": env})
    def _smoke(context: dg.OpExecutionContext, smoke: SmokeResource, kubernetes: KubernetesResource) -> None:
        results = smoke_results(context.instance, spec, smoke, kubernetes)
        for result in results:
            check = _check_result(env, result)
            # log_event records check evaluations at run time; its annotation predates them.
            context.log_event(
                dg.AssetCheckEvaluation(  # type: ignore[arg-type]
                    asset_key=deployed_key(env),
                    check_name=result.name,
                    passed=result.passed,
                    metadata=check.metadata,
                    severity=dg.AssetCheckSeverity.ERROR,
                    description=check.description,
                    blocking=True,
                )
            )
        failed = [str(r) for r in results if not r.passed]
        if failed:
            raise dg.Failure(
                f"{env}: {len(failed)} smoke check(s) failed after the rollback: " + "; ".join(failed)
            )

    return _smoke


def smoke_definitions(spec: EnvironmentSpec) -> dg.Definitions:
    """Blocking smoke checks on `<env>_deployed` and the `smoke_test_<env>` job."""
    env = spec.name
    key = deployed_key(env)
    names = check_names(spec)

    @dg.multi_asset_check(
        name=f"smoke_{env}",
        specs=[dg.AssetCheckSpec(n, asset=key, blocking=True, description=DESCRIPTIONS[n]) for n in names],
        description=f"Smoke tests of {env}: probes, version, metrics, API, database and monitoring.",
    )
    def _smoke(context: dg.AssetCheckExecutionContext, smoke: SmokeResource, kubernetes: KubernetesResource):
        for result in smoke_results(context.instance, spec, smoke, kubernetes):
            yield _check_result(env, result)

    job = dg.define_asset_job(
        f"smoke_test_{env}",
        selection=dg.AssetSelection.checks(*(dg.AssetCheckKey(key, n) for n in names)),
        description=f"Run the {env} smoke tests against the running environment (no deploy).",
        tags={"env": env, "operation": "smoke"},
    )
    return dg.Definitions(asset_checks=[_smoke], jobs=[job])
