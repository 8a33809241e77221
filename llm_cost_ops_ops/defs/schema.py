"""`<env>_schema`: the database schema of each environment, its blocking ledger check, the
standalone `migrate_<env>` job, and the migration step the deploy runs before the API rolls out."""

# No `from __future__ import annotations`: Dagster reads the config classes from the annotations.
import time
from collections.abc import Callable

import dagster as dg
from pydantic import Field

from ..environments import EnvironmentSpec
from ..errors import ConfigError
from .backup_storage import BackupStorageResource
from .databases import DatabaseResource
from .keys import NO_RETRY_TAGS, deployed_key, env_pool, env_tags, schema_key
from .kubernetes import KubernetesResource
from .records import deployed_app_image, expected_cluster
from .retries import TRANSIENT_RETRY, retried_only_when_transient

BackupGate = Callable[[dg.OpExecutionContext | dg.AssetExecutionContext], None]


class MigrateConfig(dg.Config):
    target_version: int | None = Field(default=None, description="Stop at this version (default: all).")
    dry_run: bool = Field(default=False, description="List what would be applied; change nothing.")
    image: str = Field(default="", description="Job mode: the application image (default: the deployed one).")


def _ledger_metadata(spec: EnvironmentSpec, databases: DatabaseResource) -> dict:
    from ..postgres.migrator import Migrator

    if not databases.configured(spec):
        return {"ledger": f"not read: {spec.migrations.dsn_variable(spec.name)} is not set"}
    statuses = Migrator(databases.dsn(spec)).info()
    applied = [s for s in statuses if s.state == "applied"]
    installed = [s.installed_on for s in applied if s.installed_on]
    return {
        "applied_versions": [s.version for s in applied],
        "pending_versions": [s.version for s in statuses if s.state == "pending"],
        "problems": [f"{s.version}: {s.state}" for s in statuses if s.state not in ("applied", "pending")],
        "last_applied_at": max(installed).isoformat() if installed else "never",
        "latest_version": max((s.version for s in applied), default=0),
    }


def run_migrations(
    context,
    spec: EnvironmentSpec,
    databases: DatabaseResource,
    kubernetes: KubernetesResource,
    *,
    image: str,
    target: int | None = None,
    dry_run: bool = False,
    gate: BackupGate | None = None,
    heartbeat: Callable[[], None] | None = None,
) -> dict:
    """Run the environment's migrations (direct or as a Job) after its backup gate; returns what
    was applied. Raises the runner's or the Job's error, or the gate's."""
    mode = spec.migrations.mode
    if mode == "off":
        return {"mode": "off", "applied": []}
    if gate is not None and not dry_run:
        gate(context)
    if mode == "direct":
        from ..postgres.migrator import Migrator

        report = Migrator(databases.dsn(spec), log=context.log.info).run(target=target, dry_run=dry_run)
        return {"mode": "direct", "applied": [str(v) for v in report.versions], "dry_run": dry_run}
    if not image:
        raise ConfigError(f"{spec.name}: job-mode migrations need the application image")
    from ..k8s.errors import MigrationJobFailed
    from ..k8s.migration_job import JobTiming, MigrationJobSpec, run_migration_job

    job = MigrationJobSpec(
        namespace=spec.namespace,
        image=image,
        command=tuple(spec.migrations.command),
        active_deadline_seconds=int(spec.migrations.deadline_seconds),
    )
    wanted = _directory_versions()
    before = _applied_versions(spec, databases)
    if before is not None and target is None and wanted <= before:
        context.log.info(
            f"{spec.name}: the ledger holds all {len(wanted)} migrations; no migration Job created"
        )
        return {"mode": "job", "job": "none: nothing pending", "applied": [], "verified": True}
    if before is None:
        context.log.warning(
            f"{spec.name}: the migration ledger cannot be read from Dagster "
            f"({spec.migrations.dsn_variable(spec.name)} is not set): the Job runs without knowing what is "
            "pending, and its result cannot be verified"
        )
    result = run_migration_job(
        kubernetes.connect(spec.deploy.kube_context),
        job,
        context.run.run_id,
        timing=JobTiming(deadline_seconds=spec.migrations.deadline_seconds + 60),
        sleeper=_beating(heartbeat),
        log=context.log.info,
    )
    # The Job's output is the app's own: a Job that exits 0 is not proof. Where Dagster can read the
    # ledger, every migration of the directory must be in it afterwards.
    after = _applied_versions(spec, databases)
    if after is not None:
        expected = {v for v in wanted if target is None or v <= target}
        missing = sorted(expected - after)
        if missing:
            raise MigrationJobFailed(
                f"{spec.name}: migration Job {result.name} completed, but the ledger lacks "
                f"{len(missing)} of {len(expected)} migrations: {', '.join(map(str, missing))}",
                job=result.name,
                exit_code=0,
                last_lines=result.log_lines,
            )
    applied = sorted(after - before) if before is not None and after is not None else []
    return {
        "mode": "job",
        "job": result.name,
        "applied": [str(v) for v in applied],
        "verified": after is not None,
        "log_tail": list(result.log_lines[-5:]),
    }


def _beating(heartbeat: Callable[[], None] | None) -> Callable[[float], None]:
    """A sleeper that renews the environment's Lease (when held) before every poll's sleep."""

    def sleep(seconds: float) -> None:
        if heartbeat is not None:
            heartbeat()
        time.sleep(seconds)

    return sleep


def _migration_lease_seconds(spec: EnvironmentSpec) -> int:
    return int(spec.migrations.deadline_seconds + 600)


def _directory_versions() -> set[int]:
    """The up (or simple) migrations of the platform's `migrations/` directory."""
    from ..postgres.source import load_migrations

    return {m.version for m in load_migrations() if m.kind != "down"}


def _applied_versions(spec: EnvironmentSpec, databases: DatabaseResource) -> set[int] | None:
    """Versions in the ledger, or None when no DSN is configured for this environment."""
    from ..postgres.migrator import Migrator

    if not databases.configured(spec):
        return None
    return {s.version for s in Migrator(databases.dsn(spec)).info() if s.state == "applied"}


def schema_definitions(spec: EnvironmentSpec, *, retry: dg.RetryPolicy = TRANSIENT_RETRY) -> dg.Definitions:
    """The schema asset, its blocking ledger check and the migrate job of one environment; the
    migration step retries transient errors under `retry`, nothing else."""
    env = spec.name
    key = schema_key(env)

    @dg.asset(
        key=key,
        deps=[deployed_key(env)],
        group_name=env,
        kinds={"postgres"},
        tags={"env": env},
        pool=env_pool(env),
        retry_policy=retry,
        description=(
            f"The {env} database schema: sqlx migrations from `migrations/`, applied once per deploy "
            f"({spec.migrations.mode} mode) before the API rolls out, or by `migrate_{env}`."
        ),
    )
    def _schema(
        context: dg.AssetExecutionContext,
        config: MigrateConfig,
        databases: DatabaseResource,
        kubernetes: KubernetesResource,
        backups: BackupStorageResource,
    ) -> dg.MaterializeResult:
        from ..k8s.identity import check_cluster, cluster_identity
        from ..k8s.lease import EnvironmentLease
        from ..k8s.ledger import ReleaseLedger
        from .backups import backup_gate

        gate = backup_gate(spec, backups, databases, kubernetes)
        image = config.image or deployed_app_image(context.instance, env)
        # One operation per environment: a standalone migration holds the same in-cluster Lease as
        # deploys, rollbacks and teardowns (renewed while its Job is waited on).
        lease = None
        with retried_only_when_transient():
            if not config.dry_run and (kubernetes.configured() or spec.migrations.mode == "job"):
                kube = kubernetes.connect(spec.deploy.kube_context)
                latest = ReleaseLedger(kube, env, spec.namespace, spec.deploy.history).latest()
                expected = expected_cluster(context.instance, spec) or (latest.cluster if latest else "")
                check_cluster(env, cluster_identity(kube), expected, "as its releases recorded")
                lease = EnvironmentLease(
                    kube, spec.namespace, context.run.run_id, _migration_lease_seconds(spec)
                )
                lease.acquire()
            elif not config.dry_run:
                context.log.warning(
                    f"{env}: no cluster configured: this migration holds no in-cluster Lease (only Dagster's "
                    "env-lock queue keeps other operations on this environment out)"
                )
            try:
                step = run_migrations(
                    context, spec, databases, kubernetes, image=image, target=config.target_version,
                    dry_run=config.dry_run, gate=gate, heartbeat=lease.renew_if_due if lease else None,
                )  # fmt: skip
            finally:
                if lease is not None:
                    lease.release()
            ledger = _ledger_metadata(spec, databases)
        return dg.MaterializeResult(metadata={**step, **ledger})

    @dg.asset_check(
        asset=key,
        name="ledger_matches_migrations",
        blocking=True,
        description="The database's _sqlx_migrations ledger matches migrations/: no dirty row, no changed "
        "checksum, no version missing from the directory.",
    )
    def _ledger_check(databases: DatabaseResource) -> dg.AssetCheckResult:
        from ..postgres.migrator import Migrator

        if not databases.configured(spec):
            variable = spec.migrations.dsn_variable(env)
            # Not evaluated is not a pass: WARN, so it shows and does not block.
            return dg.AssetCheckResult(
                passed=False,
                severity=dg.AssetCheckSeverity.WARN,
                description=f"not evaluated: {variable} is not set, the ledger cannot be read",
                metadata={"evaluated": False},
            )
        problems = Migrator(databases.dsn(spec)).problems()
        return dg.AssetCheckResult(
            passed=not problems,
            metadata={"problems": [str(p) for p in problems]},
            description=str(problems[0]) if problems else None,
        )

    migrate_job = dg.define_asset_job(
        f"migrate_{env}",
        selection=dg.AssetSelection.assets(key),
        description=f"Apply pending {env} migrations (after the backup gate) and check the ledger.",
        tags={**env_tags(env, "migrate"), **NO_RETRY_TAGS},
    )
    return dg.Definitions(assets=[_schema], asset_checks=[_ledger_check], jobs=[migrate_job])
