"""Per-environment teardown (the guide's `kubectl delete -k`): the `teardown_<env>` job.

A dry run by default. Volume claims and the namespace go only when the run config repeats the
environment's name in `confirm`; where the spec asks for it, a confirmed teardown also needs a
verified backup younger than `backups.verified_max_age_days`. A protected environment (`protected`,
prod by default) is deleted from only by a confirmed teardown with that verified backup: without
the confirmation, only a dry run is allowed.
"""

# No `from __future__ import annotations`: Dagster reads the config classes from the annotations.
import dataclasses
from datetime import UTC, datetime, timedelta

import dagster as dg
from pydantic import Field

from ..environments import EnvironmentSpec
from .backup_storage import BackupStorageResource
from .keys import NO_RETRY_TAGS, env_pool, env_tags
from .kubernetes import KubernetesResource
from .records import expected_cluster
from .resources import PlatformManifests


class TeardownConfig(dg.Config):
    dry_run: bool = Field(default=True, description="List what would be deleted; delete nothing.")
    confirm: str = Field(
        default="", description="Repeat the environment's name to delete volume claims and the namespace."
    )
    deadline_seconds: float | None = Field(
        default=None, gt=0, description="How long each wave may take to go (default: the rollout deadline)."
    )


def confirmed(spec: EnvironmentSpec, confirm: str) -> bool:
    """Whether `confirm` confirms the teardown; raises TeardownRefused for a wrong name."""
    from ..k8s.errors import TeardownRefused

    if confirm and confirm != spec.name:
        raise TeardownRefused(
            f"{spec.name}: confirm is {confirm!r}; repeat the environment's name ({spec.name!r}) to delete "
            "its volume claims and namespace, or leave it empty to keep them"
        )
    return confirm == spec.name


def require_verified_backup(spec: EnvironmentSpec, backups: BackupStorageResource, now: datetime) -> str:
    """The id of a verified backup recent enough for a confirmed teardown; raises TeardownRefused
    naming what is missing and the job to run."""
    from ..k8s.errors import TeardownRefused
    from ..storage.catalog import backup_ages, read_catalog

    ages = backup_ages(read_catalog(backups.store(), spec.name), now)
    limit = timedelta(days=spec.backups.verified_max_age_days)
    if ages.newest_verified is None or ages.newest_verified > limit or ages.newest_verified_id is None:
        state = (
            "no verified backup"
            if ages.newest_verified is None
            else f"the newest is {ages.newest_verified} old"
        )
        raise TeardownRefused(
            f"{spec.name}: a confirmed teardown deletes the database volumes and needs a verified backup "
            f"younger than {limit}: {state}; run backup_{spec.name} and restore_drill_{spec.name} first"
        )
    return ages.newest_verified_id


def teardown_definitions(spec: EnvironmentSpec) -> dg.Definitions:
    """The teardown job of one environment."""
    env = spec.name

    @dg.op(
        name=f"teardown_release_{env}",
        pool=env_pool(env),
        description=f"Delete the {env} objects in reverse wave order and wait for them to go; volume "
        "claims and the namespace only when confirmed. Recorded in the release ledger.",
    )
    def _teardown(
        context: dg.OpExecutionContext,
        config: TeardownConfig,
        kubernetes: KubernetesResource,
        backups: BackupStorageResource,
        manifests: PlatformManifests,
    ) -> None:
        from ..bundles.model import load_documents
        from ..k8s.errors import TeardownRefused
        from ..k8s.ledger import ReleaseLedger
        from ..k8s.teardown import TeardownOptions, execute_teardown
        from ..k8s.wait import WaitTiming

        confirm = confirmed(spec, config.confirm)
        metadata: dict = {"dry_run": config.dry_run, "confirmed": confirm, "protected": spec.protected}
        options = TeardownOptions(
            dry_run=config.dry_run,
            confirm=confirm,
            manage_namespace=spec.deploy.manage_namespace,
            wait=WaitTiming(
                spec.deploy.rollout_deadline_seconds
                if config.deadline_seconds is None
                else config.deadline_seconds,
                spec.deploy.poll_seconds,
            ),
            protected=spec.protected,
        )
        # Before any cluster request: an unconfirmed teardown that would delete from a protected
        # environment is refused without even reading the backups.
        refusal = options.refusal(env)
        if refusal and not confirm:
            raise TeardownRefused(refusal)
        if (spec.protected and not config.dry_run) or (
            confirm and spec.deploy.teardown_requires_verified_backup
        ):
            verified = require_verified_backup(spec, backups, datetime.now(UTC))
            metadata["verified_backup"] = verified
            options = dataclasses.replace(options, verified_backup=verified)
            context.log.info(f"teardown gate: verified backup {verified} is recent enough")
        kube = kubernetes.connect(spec.deploy.kube_context)
        # What is deployed is the latest release's bundle; before any release, the overlay as it is.
        latest = ReleaseLedger(kube, env, spec.namespace, spec.deploy.history).latest()
        text = latest.bundle if latest and latest.bundle else manifests.render(env).text
        result, release = execute_teardown(
            kube,
            env,
            spec.namespace,
            load_documents(text),
            options,
            run_id=context.run.run_id,
            history=spec.deploy.history,
            log=context.log.info,
            expected_cluster=expected_cluster(context.instance, spec),
        )
        metadata.update(
            outcomes=result.counts(),
            deleted=result.deleted,
            namespace_deleted=result.namespace_deleted,
            wave_seconds={w.name: w.seconds for w in result.waves},
            objects=dg.MetadataValue.md(result.table()),
        )
        if release is not None:
            metadata["release"] = release.summary()
            metadata["ledger"] = (
                f"not recorded: namespace {spec.namespace} was deleted and the ledger with it"
                if result.namespace_deleted
                else f"recorded as r{release.revision}"
            )
        context.add_output_metadata(metadata)

    @dg.job(
        name=f"teardown_{env}",
        tags={**env_tags(env, "teardown"), **NO_RETRY_TAGS},
        description=f"Tear {env} down (kubectl delete -k): a dry run unless told otherwise; volume claims "
        f"and the namespace only when the run config confirms with {env!r}.",
    )
    def teardown_job():
        _teardown()

    return dg.Definitions(jobs=[teardown_job])
