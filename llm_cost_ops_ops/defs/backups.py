"""Backups of each environment's database: `<env>_backups` (daily partitions), restore drills
(`<env>_backups_verified`, with a freshness check), retention, restore, and the migration gate."""

# No `from __future__ import annotations`: Dagster reads the config classes from the annotations.
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import dagster as dg
from pydantic import Field

from ..environments import EnvironmentSpec
from ..errors import ConfigError
from ..postgres.backup_errors import BackupGateRefused, DrillFailed
from .backup_storage import BackupStorageResource
from .databases import DatabaseResource
from .keys import NO_RETRY_TAGS, backups_key, operation_tags, schema_key, verified_key
from .kubernetes import KubernetesResource
from .notify import NotifierResource
from .retries import TRANSIENT_RETRY, retried_only_when_transient

if TYPE_CHECKING:
    from ..storage.retention import RetentionPolicy

# Dagster's tag on runs a schedule started: those backups are the chain retention keeps.
SCHEDULE_TAG = "dagster/schedule_name"

# end_offset=1: the backup taken at 02:00 belongs to that day, whose partition must already exist.
BACKUP_PARTITIONS = dg.DailyPartitionsDefinition(start_date="2026-01-01", timezone="UTC", end_offset=1)


def retention_policy(spec: EnvironmentSpec) -> "RetentionPolicy":
    """The environment's retention (`backups.retention_*` in environments.yaml): the one place the
    policy is built, for the nightly backup's pruning and the retention job alike."""
    from ..storage.retention import RetentionPolicy

    return RetentionPolicy(
        daily=spec.backups.retention_daily,
        weekly=spec.backups.retention_weekly,
        monthly=spec.backups.retention_monthly,
        min_keep=spec.backups.retention_min_keep,
    )


def report_needs_a_person(context, spec: EnvironmentSpec, plan, notifier: NotifierResource | None) -> dict:
    """Backups retention left alone because they are damaged: a warning in the run log, metadata
    and a notification (a delivery failure is logged, never raised: the backup itself is done)."""
    if not plan.untouchable:
        return {"needs_a_person": []}
    lines = [
        f"{spec.name}: backup {what} is damaged; retention leaves it (needs a person)"
        for what in plan.untouchable
    ]
    for line in lines:
        context.log.warning(line)
    if notifier is not None:
        from ..notify.message import Notice, summarize
        from ..notify.sender import NotificationFailed

        run_id = context.run.run_id
        notice = Notice(
            title=f"{spec.name}: {len(lines)} damaged backup(s) need a person",
            environment=spec.name,
            summary=summarize("; ".join(plan.untouchable), notifier.secrets()),
            job=context.run.job_name,
            run_id=run_id,
            link=notifier.run_link(run_id),
            kind="retention-needs-a-person",
        )
        try:
            notifier.send(notice)
        except NotificationFailed as exc:
            context.log.warning(f"{spec.name}: needs-a-person notice not delivered: {exc}")
    return {"needs_a_person": list(plan.untouchable)}


def take_backup(
    context,
    spec: EnvironmentSpec,
    backups: BackupStorageResource,
    databases: DatabaseResource,
    kubernetes: KubernetesResource,
    notifier: NotifierResource | None = None,
) -> dict:
    """One backup now, then retention; returns metadata. Raises StorageError, BackupError."""
    from ..postgres.backup import run_backup
    from ..storage.retention import run_retention

    source = None
    if spec.backups.source == "pod-exec":
        from ..postgres.pod_dump import PodPgDump

        source = PodPgDump(kubernetes.connect(spec.deploy.kube_context).api_client, spec.namespace)
    store = backups.store()
    result = run_backup(
        store,
        databases.dsn(spec),
        env=spec.name,
        run_id=context.run.run_id,
        source=source,
        key=backups.key(),
        include_role_passwords=spec.backups.include_role_passwords,
        scheduled=SCHEDULE_TAG in context.run.tags,
    )
    for warning in result.manifest.warnings:
        context.log.warning(f"{spec.name}: {warning}")
    context.log.info(f"backup {result.manifest_url} written; applying retention")
    plan, outcome = run_retention(store, spec.name, retention_policy(spec), datetime.now(UTC))
    for backup_id in outcome.deleted_backups:
        context.log.warning(f"{spec.name}: retention deleted backup {backup_id}")
    return {
        **result.metadata(),
        "scheduled": SCHEDULE_TAG in context.run.tags,
        "retention_deleted": list(outcome.deleted_backups),
        "retention_kept": outcome.kept,
        **report_needs_a_person(context, spec, plan, notifier),
    }


def backup_gate(
    spec: EnvironmentSpec,
    backups: BackupStorageResource,
    databases: DatabaseResource,
    kubernetes: KubernetesResource,
):
    """The migrations' gate: a backup younger than `backup_max_age_hours`, else take one first or
    refuse, per `migrations.backup_gate`."""

    def gate(context) -> None:
        policy = spec.migrations.backup_gate
        if policy == "off":
            return
        from ..storage.catalog import backup_ages, read_catalog

        ages = backup_ages(read_catalog(backups.store(), spec.name), datetime.now(UTC))
        limit = timedelta(hours=spec.migrations.backup_max_age_hours)
        if ages.newest is not None and ages.newest <= limit:
            context.log.info(f"backup gate: {ages.newest_id} is {ages.newest} old (limit {limit})")
            return
        state = "no backup" if ages.newest is None else f"the newest backup is {ages.newest} old"
        if policy == "refuse":
            raise BackupGateRefused(f"{spec.name}: {state} (limit {limit}); run backup_{spec.name} first")
        context.log.info(f"backup gate: {state}; taking one before migrating")
        metadata = take_backup(context, spec, backups, databases, kubernetes)
        context.log_event(dg.AssetMaterialization(asset_key=backups_key(spec.name), metadata=metadata))

    return gate


class RestoreConfig(dg.Config):
    backup_id: str | None = Field(default=None, description="Default: the newest verified backup.")
    target_database: str | None = Field(
        default=None, description="Default: a new database named after the backup."
    )
    confirm_existing: str = Field(
        default="", description="Repeat the target's name to restore into an existing one."
    )
    include_globals: bool = False


class RetentionConfig(dg.Config):
    dry_run: bool = Field(default=True, description="List what would be deleted; delete nothing.")


def backup_definitions(spec: EnvironmentSpec, *, retry: dg.RetryPolicy = TRANSIENT_RETRY) -> dg.Definitions:
    """Backups, drills, retention and restore of one environment; backups, drills and restores
    retry transient errors under `retry`, nothing else."""
    env = spec.name
    max_age = timedelta(days=spec.backups.verified_max_age_days)

    @dg.asset(
        key=backups_key(env),
        deps=[schema_key(env)],
        partitions_def=BACKUP_PARTITIONS,
        group_name=env,
        kinds={"postgres", "s3"},
        tags={"env": env},
        retry_policy=retry,
        description=f"Nightly {env} backup: pg_dump -> zstd -> sha256 -> (AES-GCM) -> object storage, "
        "manifest last; then retention. A run for any partition takes a backup now.",
    )
    def _backup(
        context: dg.AssetExecutionContext,
        backups: BackupStorageResource,
        databases: DatabaseResource,
        kubernetes: KubernetesResource,
        notifier: NotifierResource,
    ) -> dg.MaterializeResult:
        if not context.has_partition_key:
            # An unpartitioned materialization would be a backup no day's partition shows.
            raise ConfigError(
                f"backup_{env}: a backup run needs its day's partition (--partition YYYY-MM-DD; "
                "llm-cost-ops-ops gives today's when none is named); nothing was backed up"
            )
        with retried_only_when_transient():
            metadata = take_backup(context, spec, backups, databases, kubernetes, notifier)
        return dg.MaterializeResult(metadata=metadata)

    @dg.asset(
        key=verified_key(env),
        # Red in the UI when no drill has passed for verified_max_age_days (default 8).
        freshness_policy=dg.FreshnessPolicy.time_window(fail_window=max_age, warn_window=max_age / 2),
        deps=[backups_key(env)],
        group_name=env,
        kinds={"postgres"},
        tags={"env": env},
        retry_policy=retry,
        description=f"Restore drill: the newest {env} backup restored into a scratch database, row "
        "counts and migration ledger compared with its manifest, sanity queries run, scratch dropped, "
        "backup marked verified.",
    )
    def _verified(
        context: dg.AssetExecutionContext, backups: BackupStorageResource, databases: DatabaseResource
    ) -> dg.MaterializeResult:
        from ..postgres.drill import run_restore_drill

        with retried_only_when_transient():
            result = run_restore_drill(
                backups.store(),
                databases.admin_dsn(spec),
                env=env,
                run_id=context.run.run_id,
                key=backups.key(),
            )
            if not result.passed:
                raise DrillFailed(f"{env}: restore drill of {result.backup_id} failed: {result.summary()}")
        return dg.MaterializeResult(metadata=result.metadata())

    @dg.op(name=f"restore_backup_{env}", tags={"env": env}, retry_policy=retry)
    def _restore(
        context: dg.OpExecutionContext,
        config: RestoreConfig,
        backups: BackupStorageResource,
        databases: DatabaseResource,
    ) -> None:
        from ..postgres.restore import restore_backup

        with retried_only_when_transient():
            result = restore_backup(
                backups.store(),
                databases.admin_dsn(spec),
                env=env,
                backup_id=config.backup_id,
                target_database=config.target_database,
                confirm_existing=config.confirm_existing,
                include_globals=config.include_globals,
                key=backups.key(),
            )
        context.log.info(f"restored {result.backup_id} into {result.database}")
        context.add_output_metadata(result.metadata())

    @dg.op(name=f"apply_retention_{env}", tags={"env": env})
    def _retention(
        context: dg.OpExecutionContext,
        config: RetentionConfig,
        backups: BackupStorageResource,
        notifier: NotifierResource,
    ) -> None:
        from ..storage.retention import run_retention

        plan, outcome = run_retention(
            backups.store(), env, retention_policy(spec), datetime.now(UTC), dry_run=config.dry_run
        )
        for line in plan.describe():
            context.log.info(line)
        context.add_output_metadata(
            {
                "dry_run": outcome.dry_run,
                "deleted": list(outcome.deleted_backups),
                "kept": outcome.kept,
                "cleaned_incomplete": list(outcome.cleaned_incomplete),
                **report_needs_a_person(context, spec, plan, notifier),
            }
        )

    @dg.job(
        name=f"restore_{env}",
        tags={**operation_tags(env, "restore"), **NO_RETRY_TAGS},
        description=f"Restore a {env} backup (default: newest verified) into a new database, or into an "
        "existing one only when the run config repeats its name.",
    )
    def restore_job():
        _restore()

    @dg.job(
        name=f"backup_retention_{env}",
        tags=operation_tags(env, "retention"),
        description=f"Grandfather-father-son retention of {env} backups (dry run by default).",
    )
    def retention_job():
        _retention()

    return dg.Definitions(
        assets=[_backup, _verified],
        jobs=[
            dg.define_asset_job(
                f"backup_{env}",
                selection=dg.AssetSelection.assets(backups_key(env)),
                tags=operation_tags(env, "backup"),
                description=f"Back up the {env} database (retried on failure).",
            ),
            dg.define_asset_job(
                f"restore_drill_{env}",
                selection=dg.AssetSelection.assets(verified_key(env)),
                tags=operation_tags(env, "restore_drill"),
                description=f"Restore the newest {env} backup into a scratch database and verify it.",
            ),
            restore_job,
            retention_job,
        ],
    )
