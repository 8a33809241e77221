"""Deploys and rollbacks as releases: Lease held, engine run, outcome recorded in the ledger."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..bundles.model import RenderedBundle, load_documents
from .clock import iso_seconds, wall_clock
from .engine import DeployEngine, DeployOptions, Hook
from .errors import DryRunRejected, FieldConflict, PromotionBlocked, ReleaseNotFound
from .identity import check_cluster, cluster_identity
from .lease import EnvironmentLease
from .ledger import Release, ReleaseLedger
from .outcomes import DeployResult

if TYPE_CHECKING:
    from .client import Kube

APP_IMAGE = "llm-cost-ops"


def app_images(images: list[str]) -> set[str]:
    """The application's own image references (registry[:port]/llm-cost-ops[:tag][@digest])."""
    return {i for i in images if i.split("@")[0].rsplit("/", 1)[-1].split(":")[0] == APP_IMAGE}


@dataclass
class ReleaseRequest:
    environment: str
    namespace: str
    digest: str
    bundle_text: str
    images: list[str]
    run_id: str
    options: DeployOptions
    operation: str = "deploy"
    rollback_of: int | None = None
    lease_seconds: int = 1800
    history: int = 10

    @classmethod
    def for_release(
        cls,
        ledger: ReleaseLedger,
        target: Release,
        namespace: str,
        run_id: str,
        options: DeployOptions,
        operation: str,
        lease_seconds: int = 1800,
    ) -> ReleaseRequest:
        """Re-apply `target`'s stored bundle (a rollback or a heal), recorded as `rollback_of` it."""
        return cls(
            ledger.environment,
            namespace,
            target.digest,
            target.bundle,
            target.images,
            run_id,
            options,
            operation=operation,
            rollback_of=target.revision,
            lease_seconds=lease_seconds,
            history=ledger.history,
        )

    @classmethod
    def for_bundle(
        cls,
        bundle: RenderedBundle,
        namespace: str,
        run_id: str,
        options: DeployOptions,
        lease_seconds: int = 1800,
        history: int = 10,
    ) -> ReleaseRequest:
        return cls(
            bundle.environment,
            namespace,
            bundle.digest,
            bundle.text,
            bundle.images(),
            run_id,
            options,
            lease_seconds=lease_seconds,
            history=history,
        )


def execute_release(
    kube: Kube,
    request: ReleaseRequest,
    *,
    hooks: Mapping[str, Hook] | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleeper: Callable[[float], None] = time.sleep,
    log: Callable[[str], None] = lambda _: None,
    warn: Callable[[str], None] | None = None,
    expected_cluster: str = "",
) -> tuple[DeployResult, Release | None]:
    """Apply a bundle under the environment's Lease and record the release, healthy or failed.

    A dry run takes no Lease and records nothing. Raises what the engine raises, after recording
    a failed release when anything had been written.
    """
    objects: list[dict[str, Any]] = load_documents(request.bundle_text)
    if request.options.dry_run:
        engine = DeployEngine(kube, request.environment, clock=clock, sleeper=sleeper, log=log, warn=warn)
        return engine.deploy(objects, request.namespace, request.options, digest=request.digest), None
    now = wall_clock(clock)
    lease = EnvironmentLease(kube, request.namespace, request.run_id, request.lease_seconds, now=now)
    ledger = ReleaseLedger(kube, request.environment, request.namespace, request.history)
    held = False
    # Never write to a cluster that is not the environment's: the one the caller names (the spec,
    # Dagster's record) or, failing that, the one its last release ran on.
    identity = cluster_identity(kube)
    previous = ledger.latest()
    recorded = previous.cluster if previous is not None else ""
    check_cluster(
        request.environment,
        identity,
        expected_cluster or recorded,
        "as configured" if expected_cluster else f"its release r{previous.revision if previous else 0}",
    )

    def heartbeat() -> None:
        if held:
            lease.renew_if_due()

    engine = DeployEngine(
        kube, request.environment, clock=clock, sleeper=sleeper, log=log, heartbeat=heartbeat, warn=warn
    )

    # Read before the engine plans: if no one has taken the Lease since, that plan is still current.
    before_plan = lease.version()

    def take_lease() -> bool:
        nonlocal held
        lease.acquire()
        held = True
        return lease.taken_over == before_plan

    started = iso_seconds(now())

    def release_of(outcome: str, detail: str, migrations: list[str]) -> Release:
        return Release(
            request.environment,
            request.digest,
            request.bundle_text,
            request.images,
            outcome,
            operation=request.operation,
            started_at=started,
            finished_at=iso_seconds(now()),
            run_id=request.run_id,
            rollback_of=request.rollback_of,
            detail=detail,
            migrations=migrations,
            cluster=identity.uid,
        )

    try:
        result = engine.deploy(
            objects,
            request.namespace,
            request.options,
            digest=request.digest,
            hooks=hooks,
            before_writes=take_lease,
        )
        migrations = list((result.hooks.get("migrate") or {}).get("applied", []))
        latest = ledger.latest()
        unchanged = result.writes == 0 and not migrations
        if unchanged and latest is not None and latest.healthy and latest.digest == request.digest:
            return result, latest  # a no-op redeploy of the running release: nothing to record
        if not held:
            take_lease()  # the ledger is written under the Lease too
        return result, ledger.record(release_of("healthy", f"{result.counts()}", migrations))
    except (DryRunRejected, FieldConflict):
        raise  # refused before any write (also under the Lease): no release to record
    except Exception as exc:
        # Anything that fails after a write (a rollout, the migration hook) leaves a failed release.
        if held:
            ledger.record(release_of("failed", str(exc)[:2000], []))
        raise
    finally:
        if held:
            lease.release()


def rollback_request(
    ledger: ReleaseLedger, run_id: str, options: DeployOptions, namespace: str, to_revision: int | None = None
) -> tuple[ReleaseRequest, Release]:
    """The request that re-applies the last healthy release before the current one (or a chosen
    revision). Raises ReleaseNotFound when there is none."""
    releases = ledger.releases()
    if to_revision is not None:
        target = next((r for r in releases if r.revision == to_revision), None)
        if target is None:
            raise ReleaseNotFound(f"{ledger.environment}: revision {to_revision} is not in the ledger")
    else:
        current = releases[-1].revision if releases else None
        target = ledger.last_healthy(before=current)
    return ReleaseRequest.for_release(ledger, target, namespace, run_id, options, "rollback"), target


def check_promotion(source: ReleaseLedger, images: list[str]) -> Release:
    """Prod may only run application images that the source environment runs in a healthy release.

    Raises PromotionBlocked naming the images and what the source environment runs.
    """
    wanted = app_images(images)
    latest = source.latest()
    if latest is None or not latest.healthy:
        state = (
            "has no release" if latest is None else f"latest release r{latest.revision} is {latest.outcome}"
        )
        raise PromotionBlocked(
            f"promotion gate: {source.environment} {state}; deploy {sorted(wanted)} there first"
        )
    running = app_images(latest.images)
    if not wanted <= running:
        raise PromotionBlocked(
            f"promotion gate: {source.environment} runs {sorted(running)} (r{latest.revision}), "
            f"not {sorted(wanted - running)}; deploy and verify them there first"
        )
    return latest
