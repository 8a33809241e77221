"""The drift check of `<env>_deployed`: the live objects against the last healthy release, through
server-side apply dry-runs; an hourly job runs it (`drift_check_<env>`, cron from environments.yaml).
In a deploy's own run it reuses the comparison the deploy just made (defs/kubernetes.py keeps it
for the run) instead of dry-running every object again."""

# No `from __future__ import annotations`: Dagster reads context and resource annotations.

import dagster as dg

from ..environments import EnvironmentSpec
from .keys import deployed_key, drift_check_key
from .kubernetes import KubernetesResource

MAX_ROWS = 100


def not_evaluated(context: dg.AssetCheckExecutionContext, reason: str) -> dg.AssetCheckResult:
    """A drift check that could not compare anything: not a pass (WARN, `evaluated: false`), and a
    warning in the run's log saying so."""
    context.log.warning(f"drift not evaluated: {reason}")
    return dg.AssetCheckResult(
        passed=False,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"status": "not evaluated", "evaluated": False, "reason": reason},
        description=f"not evaluated: {reason}",
    )


def was_evaluated(evaluation) -> bool:
    """Whether a recorded drift check evaluation compared anything (False: not evaluated)."""
    value = evaluation.metadata.get("evaluated") if evaluation is not None else None
    return value is None or value.value is not False


def _table(drifted) -> str:
    rows = ["| object | drifted fields |", "|---|---|"]
    rows += [
        f"| {d.ref} | {'missing' if d.missing else ', '.join(f'`{f}`' for f in d.fields)} |"
        for d in drifted[:MAX_ROWS]
    ]
    return "\n".join(rows)


def drift_definitions(spec: EnvironmentSpec) -> dg.Definitions:
    env = spec.name

    @dg.asset_check(
        asset=deployed_key(env),
        name="drift",
        blocking=False,
        description="The live objects match the last healthy release (server-side apply dry-run of each "
        "object against its live state); lists drifted objects and fields, never values.",
    )
    def _drift(context: dg.AssetCheckExecutionContext, kubernetes: KubernetesResource) -> dg.AssetCheckResult:
        from ..k8s.drift import detect_drift
        from ..k8s.errors import ReleaseNotFound
        from ..k8s.ledger import ReleaseLedger

        if not kubernetes.configured():
            return not_evaluated(
                context,
                f"{env}: no cluster configured (no kubeconfig: KUBECONFIG unset, no ~/.kube/config; "
                "not in a cluster), so nothing was compared",
            )
        kube = kubernetes.connect(spec.deploy.kube_context)
        try:
            release = ReleaseLedger(kube, env, spec.namespace, spec.deploy.history).last_healthy()
        except ReleaseNotFound:
            return not_evaluated(
                context,
                f"{env} has no healthy release in its ledger (never deployed?): nothing to compare with",
            )
        # In a deploy's run, the deploy already compared every object with this release.
        report = kubernetes.measured_drift(env, release.revision, release.digest)
        source = "this run's deploy (its dry-runs and apply responses)"
        if report is None:
            report = detect_drift(kube, env, spec.namespace, release)
            source = "server-side apply dry-runs"
        context.log.info(
            f"{env}: {report.checked} objects compared with r{report.revision} from {source}, "
            f"{len(report.drifted)} drifted"
        )
        return dg.AssetCheckResult(
            passed=report.clean,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={
                "status": "clean" if report.clean else "drifted",
                "evaluated": True,
                "revision": report.revision,
                "digest": report.digest,
                "checked": report.checked,
                "drifted": len(report.drifted),
                "drifted_objects": dg.MetadataValue.md(_table(report.drifted)),
                "not_served": report.skipped,
                "compared_by": source,
            },
            description=None if report.clean else "; ".join(str(d) for d in report.drifted[:5]),
        )

    job = dg.define_asset_job(
        f"drift_check_{env}",
        selection=dg.AssetSelection.checks(drift_check_key(env)),
        description=f"Compare the live {env} objects with its last healthy release (server-side dry-run).",
        tags={"env": env, "operation": "drift"},
    )
    # Its hourly schedule is data, like every schedule: schedules/drift.yaml.
    return dg.Definitions(asset_checks=[_drift], jobs=[job])
