"""Per-environment sensors: failed rollouts -> remediation (redeploy, rollback or alert), drift
checks on a schedule, and drift self-heal through the same remediation path.

A tick never crashes on the cluster: API errors become a SkipReason naming them. Nothing is judged
while a deploy, rollback or migration of the environment is queued or running.
"""

# No `from __future__ import annotations`: Dagster reads context and resource annotations.

import dataclasses
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import dagster as dg

from ..environments import EnvironmentSpec
from ..k8s.detect import RolloutFailure, Thresholds
from ..k8s.errors import ApiError, KubernetesError
from ..k8s.rollback_guard import SchemaVerdict, check_rollback_schema, down_migrations_in
from ..operator_declaration import NOBODY, OperatorDeclaration
from ..paths import project_root
from ..remediation import decide, remediation_job
from .automation import sensor_status
from .drift import drift_definitions, was_evaluated
from .heal import heal_definitions, heal_job_name
from .keys import drift_check_key
from .kubernetes import KubernetesResource
from .notify import NotifierResource
from .remediation import (
    SensorState,
    alert,
    handled_by,
    operation_in_progress,
    recent_remediations,
    run_request,
)

if TYPE_CHECKING:
    from ..k8s.client import Kube

Clock = Callable[[], float]


def rollback_schema(kube: "Kube", spec: EnvironmentSpec) -> SchemaVerdict:
    """The schema guard's verdict on rolling back to the last healthy release before the current one."""
    from ..k8s.ledger import ReleaseLedger

    releases = ReleaseLedger(kube, spec.name, spec.namespace, spec.deploy.history).releases()
    current = releases[-1].revision if releases else 0
    target = next((r for r in reversed(releases) if r.healthy and r.revision < current), None)
    if target is None:
        return SchemaVerdict(False, "rollback impossible: no healthy release before the current one")
    return check_rollback_schema(
        releases,
        target,
        allow_revert=spec.operations.allow_revert_migrations,
        has_down=down_migrations_in(project_root() / "migrations"),
    )


def _remediate(
    context: dg.SensorEvaluationContext,
    spec: EnvironmentSpec,
    failures: list[RolloutFailure],
    state: SensorState,
    notifier: NotifierResource,
    now: float,
    schema: Callable[[], SchemaVerdict] | None,
) -> tuple[list[dg.RunRequest], list[str]]:
    """One run request at most per tick (one rollback repairs every workload); alerts otherwise."""
    env, ops = spec.name, spec.operations
    requests: list[dg.RunRequest] = []
    notes: list[str] = []
    recent = recent_remediations(context.instance, state, env, now)
    for failure in failures:
        handled = handled_by(context.instance, state, failure.key)
        if requests and not handled:
            notes.append(f"{failure.ref} {failure.reason}: waits for the run requested this tick")
            continue
        verdict = None
        if schema is not None and not handled and recent < ops.max_remediations_per_hour:
            try:
                verdict = schema()
            except KubernetesError as exc:
                verdict = SchemaVerdict(False, f"cannot read the release ledger: {exc}")
        decision = decide(
            ops.remediation,
            env,
            handled_by=handled,
            recent=recent,
            limit=ops.max_remediations_per_hour,
            schema=verdict,
            reason=failure.reason,
        )
        notes.append(
            f"{failure.ref} {failure.reason} (key {failure.key}): {decision.action}, {decision.reason}"
        )
        if decision.action == "run":
            requests.append(run_request(decision, env, failure.key, f"{failure.reason}: {failure.message}"))
            state.runs[failure.key] = now
        elif decision.action == "alert":
            title = f"{env}: {failure.ref} failed ({failure.reason})"
            alert(notifier, env, title, f"{failure.message}. {decision.reason}", context.log)
            state.alerts[failure.key] = now
    return requests, notes


def rollout_sensor(
    spec: EnvironmentSpec, clock: Clock = time.time, operator: OperatorDeclaration = NOBODY
) -> dg.SensorDefinition:
    """On only where this instance is declared the operator of the environment."""
    env, ops = spec.name, spec.operations
    thresholds = Thresholds(
        ops.crashloop_restart_threshold, ops.grace_period_seconds, spec.deploy.database_deadline_seconds
    )
    status, description = sensor_status(
        operator,
        env,
        f"Detects failed rollouts in {spec.namespace} and remediates: {ops.remediation} "
        f"(at most {ops.max_remediations_per_hour} per hour, then alert only).",
    )

    @dg.sensor(
        name=f"rollout_health_{env}",
        job_name=remediation_job(ops.remediation, env),
        minimum_interval_seconds=ops.sensor_interval_seconds,
        default_status=status,
        description=description,
    )
    def _sensor(
        context: dg.SensorEvaluationContext, kubernetes: KubernetesResource, notifier: NotifierResource
    ):
        from ..k8s.rollout_scan import scan_rollouts

        now = clock()
        busy = operation_in_progress(context.instance, env)
        if busy is not None:
            return dg.SkipReason(
                f"{env}: {busy.job_name} run {busy.run_id} is in progress; rollouts not judged"
            )
        if not kubernetes.configured():
            return dg.SkipReason(f"{env}: no cluster configured")
        state = SensorState.load(context.cursor)
        try:
            # The resource's connection, with its sleeper; few, short retries within a tick.
            kube = kubernetes.connect(spec.deploy.kube_context, max_attempts=2, backoff_max=1.0)
            scan = scan_rollouts(kube, env, spec.namespace, thresholds, now, state.since)
        except KubernetesError as exc:
            status = f" (HTTP {exc.status})" if isinstance(exc, ApiError) and exc.status else ""
            return dg.SkipReason(f"{env}: Kubernetes API error, rollouts not judged this tick: {exc}{status}")
        state.since = scan.pending
        if not scan.failures:
            waiting = f"; timing {len(scan.pending)} condition(s)" if scan.pending else ""
            skip = dg.SkipReason(f"{env}: {scan.workloads} workload(s), no failed rollout{waiting}")
            return dg.SensorResult(skip_reason=skip, cursor=state.dump(now))
        schema = (lambda: rollback_schema(kube, spec)) if ops.remediation == "rollback" else None
        requests, notes = _remediate(context, spec, scan.failures, state, notifier, now, schema)
        for note in notes:
            context.log.info(f"{env}: {note}")
        if requests:
            return dg.SensorResult(run_requests=requests, cursor=state.dump(now))
        return dg.SensorResult(
            skip_reason=dg.SkipReason(f"{env}: " + "; ".join(notes)), cursor=state.dump(now)
        )

    return _sensor


def self_heal_sensor(
    spec: EnvironmentSpec, clock: Clock = time.time, operator: OperatorDeclaration = NOBODY
) -> dg.SensorDefinition:
    """Drift reported by the `drift` check -> a `heal_<env>` run (the running release re-applied
    with force, other managers' additions removed), under the same remediation limits. On only
    where this instance is declared the operator of the environment."""
    env, ops = spec.name, spec.operations
    check_key = drift_check_key(env)
    status, description = sensor_status(
        operator,
        env,
        f"Heals {env} back to its running release when its drift check finds drift (operations.self_heal).",
    )

    @dg.sensor(
        name=f"drift_self_heal_{env}",
        job_name=heal_job_name(env),
        minimum_interval_seconds=max(ops.sensor_interval_seconds, 60),
        default_status=status,
        description=description,
    )
    def _sensor(context: dg.SensorEvaluationContext, notifier: NotifierResource):
        now = clock()
        latest = context.instance.event_log_storage.get_latest_asset_check_execution_by_key([check_key])
        record = latest.get(check_key)
        # The record's status enum is not exported by dagster; its value is stable.
        if record is None or record.status.value != "FAILED":
            return dg.SkipReason(f"{env}: the latest drift check found no drift")
        event = record.event.dagster_event if record.event else None
        evaluation = event.asset_check_evaluation_data if event else None
        if not was_evaluated(evaluation):
            return dg.SkipReason(f"{env}: the latest drift check was not evaluated; nothing to heal")
        busy = operation_in_progress(context.instance, env)
        if busy is not None:
            return dg.SkipReason(f"{env}: {busy.job_name} run {busy.run_id} is in progress")
        state = SensorState.load(context.cursor)
        key = f"{env}:drift@{record.run_id}"
        decision = decide(
            "redeploy",
            env,
            handled_by=handled_by(context.instance, state, key),
            recent=recent_remediations(context.instance, state, env, now),
            limit=ops.max_remediations_per_hour,
        )
        if decision.action == "run":
            state.runs[key] = now
            decision = dataclasses.replace(decision, job=heal_job_name(env))
            request = run_request(decision, env, key, f"drift found by run {record.run_id}")
            return dg.SensorResult(run_requests=[request], cursor=state.dump(now))
        if decision.action == "alert":
            alert(notifier, env, f"{env}: drift not healed", decision.reason, context.log)
            state.alerts[key] = now
        return dg.SensorResult(skip_reason=dg.SkipReason(f"{env}: {decision.reason}"), cursor=state.dump(now))

    return _sensor


def sensor_definitions(
    spec: EnvironmentSpec, *, clock: Clock = time.time, operator: OperatorDeclaration = NOBODY
) -> dg.Definitions:
    """The rollout sensor, the drift check with its job and schedule, and (self_heal) the
    drift self-heal sensor of one environment; the sensors are on only where `operator` says this
    instance operates the environment."""
    sensors = [rollout_sensor(spec, clock, operator)]
    if spec.operations.self_heal:
        sensors.append(self_heal_sensor(spec, clock, operator))
    return dg.Definitions.merge(
        drift_definitions(spec), heal_definitions(spec), dg.Definitions(sensors=sensors)
    )
