"""The promotion gate's second half: the source environment's release counts as healthy for
promotion only when its rollout was healthy (the ledger says so, k8s/releases.check_promotion) **and**
the blocking checks of the run that made it passed: the smoke checks on `<source>_deployed` and the
ledger check on `<source>_schema`, as this Dagster instance recorded them. Checks that this instance
never saw for that run are not a pass: the gate refuses and says so.
"""

import dagster as dg

from ..k8s.errors import PromotionBlocked
from ..k8s.ledger import Release
from .keys import deployed_key, schema_key


def check_promoted_checks(instance: dg.DagsterInstance, source: str, release: Release) -> list[str]:
    """The names of the source release's blocking checks that passed. Raises PromotionBlocked naming
    the release and the failed (or never evaluated) checks."""
    where = f"promotion gate: {source} r{release.revision} (run {release.run_id or '?'})"
    deployed = deployed_key(source)
    keys = {deployed, schema_key(source)}
    # The runs that materialized <source>_deployed at this revision (its deploy, and no-op redeploys
    # of it that ran the smoke checks again), newest first; the newest with evaluations decides.
    runs = [
        r.run_id
        for r in instance.fetch_materializations(deployed, limit=50).records
        if _revision(r) == release.revision
    ]
    runs += [release.run_id] if release.run_id and release.run_id not in runs else []
    evaluations: list = []
    for run_id in runs:
        records = instance.get_records_for_run(
            run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION
        ).records
        events = [r.event_log_entry.dagster_event for r in records]
        evaluations = [e.event_specific_data for e in events if e is not None]
        evaluations = [e for e in evaluations if e.asset_key in keys]
        if evaluations:
            break
    if not evaluations:
        raise PromotionBlocked(
            f"{where}: no blocking check of that release was evaluated in this instance; its smoke "
            "checks did not run, so it is not proven healthy (run smoke_test_"
            f"{source}, or set promotion_gate: false to override)"
        )
    failed = sorted(
        f"{e.asset_key.to_user_string()}:{e.check_name}"
        for e in evaluations
        if not e.passed and e.severity == dg.AssetCheckSeverity.ERROR
    )
    if failed:
        raise PromotionBlocked(
            f"{where}: its blocking checks failed: {', '.join(failed)}; fix {source} first"
        )
    return sorted(e.check_name for e in evaluations)


def _revision(record) -> int | None:
    value = (record.asset_materialization.metadata or {}).get("revision")
    return getattr(value, "value", value)
