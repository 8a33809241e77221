"""`<env>_status`: one environment at a glance, read back from this Dagster instance.

What is deployed (release revision, image, digest, when), whether every check of the environment's
assets passes, its schema version and the age of its newest verified backup, as a short markdown
table in the materialization's metadata. It reads only the instance (no cluster, no database), so
it is cheap; `status_refresh_<env>` runs `status_<env>` after every finished run of the environment.

A check that never ran, or ran without evaluating anything, is not a pass: the table says so.
"""

# No `from __future__ import annotations`: Dagster reads the context annotation.

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import dagster as dg

from ..environments import EnvironmentSpec
from .keys import (
    backups_key,
    deployed_key,
    environment_keys,
    operation_tags,
    schema_key,
    status_key,
    verified_key,
)

FINISHED = [dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED]
LOOKBACK = 50  # materializations searched for a schema version or a backup's own record


def status_job_name(environment: str) -> str:
    return f"status_{environment}"


@dataclass
class CheckStates:
    """The latest verdict of each check: passed, failed (with why), not evaluated, never run."""

    passed: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    not_evaluated: list[str] = field(default_factory=list)
    never_run: list[str] = field(default_factory=list)

    @property
    def all_pass(self) -> bool:
        return bool(self.passed) and not (self.failed or self.not_evaluated or self.never_run)

    def line(self) -> str:
        total = len(self.passed) + len(self.failed) + len(self.not_evaluated) + len(self.never_run)
        if total == 0:
            return "no checks defined"
        head = f"{'yes' if self.all_pass else 'no'}: {len(self.passed)} of {total} pass"
        parts = [f"{label}: {_names(names)}" for label, names in self.groups() if names]
        return "; ".join([head, *parts])

    def groups(self) -> list[tuple[str, list[str]]]:
        """(label, check names) of the checks that do not pass."""
        return [
            ("failing", self.failed),
            ("not evaluated", self.not_evaluated),
            ("never run", self.never_run),
        ]


def _names(names: list[str], most: int = 4) -> str:
    shown = ", ".join(names[:most])
    return f"{shown} and {len(names) - most} more" if len(names) > most else shown


def _age(seconds: float) -> str:
    minutes = int(seconds // 60)
    if minutes < 60:
        return f"{minutes} min"
    hours = minutes // 60
    return f"{hours} h {minutes % 60} min" if hours < 48 else f"{hours // 24} d {hours % 24} h"


def _when(timestamp: float, now: float) -> str:
    stamp = datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"{stamp} ({_age(max(now - timestamp, 0))} ago)"


def _values(record) -> dict:
    materialization = record.asset_materialization
    metadata = materialization.metadata if materialization else {}
    return {name: getattr(value, "value", value) for name, value in metadata.items()}


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def check_states(instance: dg.DagsterInstance, check_keys: list[dg.AssetCheckKey]) -> CheckStates:
    """The latest execution of each check in `check_keys`, sorted into CheckStates."""
    latest = instance.event_log_storage.get_latest_asset_check_execution_by_key(check_keys)
    states = CheckStates()
    for key in sorted(check_keys, key=lambda k: k.to_user_string()):
        name = key.to_user_string()
        record = latest.get(key)
        event = record.event.dagster_event if record and record.event else None
        evaluation = event.asset_check_evaluation_data if event else None
        if evaluation is None:
            states.never_run.append(name)
        elif evaluation.passed:
            states.passed.append(name)
        elif evaluation.metadata.get("evaluated") and evaluation.metadata["evaluated"].value is False:
            states.not_evaluated.append(name)
        else:
            states.failed.append(name)
    return states


def _schema_line(instance: dg.DagsterInstance, environment: str, now: float, values: dict) -> str:
    """The newest ledger version recorded (a standalone migration reads the ledger; a deploy's
    migration wave records only what it applied, which raises the version it shows)."""
    newer: list[int] = []
    for record in instance.fetch_materializations(schema_key(environment), limit=LOOKBACK).records:
        meta = _values(record)
        if "latest_version" in meta:
            values["schema_version"] = max([int(meta["latest_version"]), *newer])
            since = f", then {', '.join(map(str, sorted(newer)))} applied" if newer else ""
            return f"{values['schema_version']} (ledger read {_when(record.timestamp, now)}{since})"
        newer += [int(v) for v in meta.get("applied") or [] if str(v).isdigit()]
    if newer:
        values["schema_version"] = max(newer)
        return f"at least {max(newer)} (applied by a deploy; migrate_{environment} reads the ledger)"
    return "unknown (no migration recorded in this instance)"


def environment_status(
    instance: dg.DagsterInstance,
    environment: str,
    check_keys: list[dg.AssetCheckKey],
    now: float,
    verified_max_age_days: float | None = None,
) -> tuple[str, dict]:
    """The markdown table and plain metadata values of `environment`'s status; a verified backup
    older than `verified_max_age_days` is marked stale."""
    rows: list[tuple[str, str]] = []
    values: dict = {}

    deployed = instance.get_latest_materialization_event(deployed_key(environment))
    if deployed is None:
        rows.append(("deployed", "never (no release recorded in this instance)"))
    else:
        from ..k8s.releases import app_images

        meta = _values(deployed)
        images = [str(i) for i in meta.get("images") or []]
        shown = sorted(app_images(images)) or images
        revision = meta.get("revision")
        rows.append(
            (
                "deployed",
                f"r{revision} ({meta.get('operation', 'deploy')}) at {_when(deployed.timestamp, now)}",
            )
        )
        rows.append(("image", ", ".join(f"`{i}`" for i in shown) or "none recorded"))
        rows.append(("digest", f"`{meta.get('digest', 'none recorded')}`"))
        values.update(revision=revision, digest=str(meta.get("digest", "")), images=shown)

    checks = check_states(instance, check_keys)
    rows.append(("checks pass", checks.line()))
    values["checks_pass"] = checks.all_pass
    values.update({f"checks_{label.replace(' ', '_')}": names for label, names in checks.groups()})

    rows.append(("schema version", _schema_line(instance, environment, now, values)))

    drill = instance.get_latest_materialization_event(verified_key(environment))
    if drill is None:
        rows.append(("newest verified backup", "none (no restore drill recorded)"))
    else:
        backup_id = str(_values(drill).get("backup_id", "?"))
        taken = next(
            (
                r.timestamp
                for r in instance.fetch_materializations(backups_key(environment), limit=LOOKBACK).records
                if str(_values(r).get("backup_id")) == backup_id
            ),
            None,
        )
        verified = f"verified {_when(drill.timestamp, now)}"
        if taken is None:
            rows.append(("newest verified backup", f"`{backup_id}`, taken: not recorded here, {verified}"))
        else:
            stale = verified_max_age_days is not None and now - taken > verified_max_age_days * 86400
            mark = f"STALE (older than {verified_max_age_days:g} days), " if stale else ""
            rows.append(
                ("newest verified backup", f"`{backup_id}`, {mark}{_age(now - taken)} old, {verified}")
            )
            values["verified_backup_age_hours"] = round((now - taken) / 3600, 2)
        values["verified_backup_id"] = backup_id

    table = "\n".join(["| | |", "|---|---|", *(f"| {name} | {_cell(state)} |" for name, state in rows)])
    return f"**{environment}**\n\n{table}", values


def status_materialization(
    instance: dg.DagsterInstance, spec: EnvironmentSpec, checks: list[dg.AssetCheckKey], now: float
) -> dg.AssetMaterialization:
    """`<env>_status` as of `now`, from this instance's records."""
    table, values = environment_status(instance, spec.name, checks, now, spec.backups.verified_max_age_days)
    return dg.AssetMaterialization(
        asset_key=status_key(spec.name), metadata={"status": dg.MetadataValue.md(table), **values}
    )


def status_sensor(
    spec: EnvironmentSpec, checks: list[dg.AssetCheckKey] | None = None, clock=time.time
) -> dg.SensorDefinition:
    """After any finished run of the environment (a deploy, backup, drill, check, ...; or a run of
    every environment such as `render_and_check`), `<env>_status` materialized by the sensor itself:
    no run, so nothing waits in the queue for a daemon (the CLI's own daemon stops with its run)."""
    env = spec.name
    job_name = status_job_name(env)

    @dg.sensor(
        name=f"status_refresh_{env}",
        minimum_interval_seconds=30,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"Refreshes {env}_status after every finished run of {env} (reads this instance only).",
    )
    def _sensor(context: dg.SensorEvaluationContext):
        since = float(context.cursor) if context.cursor else clock() - 24 * 3600
        records = context.instance.get_run_records(
            filters=dg.RunsFilter(statuses=FINISHED, updated_after=datetime.fromtimestamp(since, UTC)),
            limit=LOOKBACK,
            order_by="update_timestamp",
            ascending=False,
        )
        if not records:
            return dg.SkipReason(f"{env}: no run finished since the last refresh")
        cursor = str(max(r.update_timestamp.timestamp() for r in records))
        relevant = [
            r.dagster_run
            for r in records
            if r.dagster_run.job_name != job_name and r.dagster_run.tags.get("env", env) == env
        ]
        if not relevant:
            return dg.SensorResult(
                skip_reason=dg.SkipReason(f"{env}: no run of {env} finished since the last refresh"),
                cursor=cursor,
            )
        context.log.info(f"{env}: refreshing {env}_status after run {relevant[0].run_id}")
        status = status_materialization(context.instance, spec, checks or [], clock())
        return dg.SensorResult(asset_events=[status], cursor=cursor)

    return _sensor


def status_definitions(spec: EnvironmentSpec, check_keys: Iterable[dg.AssetCheckKey]) -> dg.Definitions:
    """The status asset of one environment, its job and the sensor that refreshes it; `check_keys`
    are the code location's checks (those on the environment's assets are judged)."""
    env = spec.name
    own = set(environment_keys(env))
    checks = sorted((k for k in check_keys if k.asset_key in own), key=lambda k: k.to_user_string())

    @dg.asset(
        key=status_key(env),
        deps=[deployed_key(env), schema_key(env), verified_key(env)],
        group_name=env,
        kinds={"dagster"},
        tags={"env": env},
        description=f"{env} at a glance: what is deployed (revision, image, digest, when), whether its "
        "checks pass, its schema version and the age of its newest verified backup; read from this "
        "Dagster instance, refreshed after every run of the environment.",
    )
    def _status(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        status = status_materialization(context.instance, spec, checks, time.time())
        context.log.info(str(status.metadata["status"].value))
        return dg.MaterializeResult(metadata=status.metadata)

    job = dg.define_asset_job(
        status_job_name(env),
        selection=dg.AssetSelection.assets(status_key(env)),
        tags=operation_tags(env, "status"),
        description=f"Refresh {env}_status from this instance's records (no cluster or database calls).",
    )
    return dg.Definitions(assets=[_status], jobs=[job], sensors=[status_sensor(spec, checks)])
