"""What a finished run did, in lines a person reads in ten seconds, built from the run's events.

The order is the reading order: for a failure the one-line cause first, then the run, the checks
(each finding), what other assets recorded (a backup's size, duration, URL and retention), and last
the plan or the deploy: each wave with its objects and their change, writes, seconds per wave and
the release revision.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import dagster as dg

from ..notify.message import summarize
from ..redaction import environment_secrets, redact

# A deploy's outcome (or a plan's change) as the symbol and word the summary shows.
CHANGES = {
    "created": "+ created",
    "configured": "~ configured",
    "adopted": "~ adopted",
    "unchanged": "= unchanged",
    "pruned": "- pruned",
    "skipped": "! skipped",
    "would-create": "+ would create",
    "would-configure": "~ would configure",
    "would-adopt": "~ would adopt",
    "would-prune": "- would prune",
    # plan mode (defs/deploy: DeployPlan.table)
    "add": "+ create",
    "change": "~ configure",
    "same": "= unchanged",
    "remove": "- prune",
}
_CELL = re.compile(r"(?<!\\)\|")
MAX_SCALAR_CHARS = 120


def table_rows(markdown: str) -> list[dict[str, str]]:
    """The rows of a markdown table (header row, separator, rows) as dicts keyed by the header."""
    lines = [line.strip() for line in markdown.strip().splitlines() if line.strip().startswith("|")]
    if len(lines) < 2:
        return []

    def cells(line: str) -> list[str]:
        parts = _CELL.split(line.strip().strip("|"))
        return [p.strip().replace("\\|", "|") for p in parts]

    header = cells(lines[0])
    return [dict(zip(header, cells(line), strict=False)) for line in lines[2:]]


def _value(entry: Any) -> Any:
    return getattr(entry, "value", entry)


def _text(entry: Any) -> str:
    value = _value(entry)
    return value if isinstance(value, str) else ""


@dataclass
class RunFacts:
    """The parts of a run's event log the summary reads."""

    job_name: str
    status: str
    seconds: float | None = None
    partition: str | None = None
    cause: str = ""
    failed_step: str = ""
    failed_steps: int = 0
    assets: list[tuple[str, str, Mapping[str, Any]]] = field(default_factory=list)  # kind, key, metadata
    checks: list[tuple[str, str, bool, str, Mapping[str, Any]]] = field(default_factory=list)
    outputs: list[tuple[str, Mapping[str, Any]]] = field(default_factory=list)  # step, metadata
    asset_steps: set[str] = field(default_factory=set)
    warnings: list[str] = field(default_factory=list)  # the run's warning-level log messages


def _own_cause(error: Any) -> str:
    """The project's own message: past Dagster's wrappers and the Failure a step raises from it."""
    while getattr(error, "cause", None) is not None and (
        getattr(error, "cls_name", "").startswith("Dagster") or getattr(error, "cls_name", "") == "Failure"
    ):
        error = error.cause
    return str(getattr(error, "message", "") or "")


def facts_from_records(run: dg.DagsterRun, records: Iterable[Any], seconds: float | None) -> RunFacts:
    """Read a run's event log records (instance.get_records_for_run) into RunFacts."""
    facts = RunFacts(
        run.job_name, run.status.value, seconds=seconds, partition=run.tags.get("dagster/partition")
    )
    run_failure = ""
    for record in records:
        event = record.event_log_entry.dagster_event
        if event is None:
            # A warning logged by a step (a skipped ServiceMonitor) is shown even when the step failed
            # before its metadata was recorded.
            if record.event_log_entry.level >= logging.WARNING and record.event_log_entry.user_message:
                facts.warnings.append(record.event_log_entry.user_message)
            continue
        kind = event.event_type
        data = event.event_specific_data
        if kind in (dg.DagsterEventType.ASSET_MATERIALIZATION, dg.DagsterEventType.ASSET_OBSERVATION):
            facts.asset_steps.add(event.step_key or "")
        if kind == dg.DagsterEventType.ASSET_MATERIALIZATION:
            m = data.materialization
            facts.assets.append(("materialized", m.asset_key.to_user_string(), m.metadata))
        elif kind == dg.DagsterEventType.ASSET_OBSERVATION:
            o = data.asset_observation
            facts.assets.append(("observed", o.asset_key.to_user_string(), o.metadata))
        elif kind == dg.DagsterEventType.ASSET_CHECK_EVALUATION:
            facts.checks.append(
                (
                    data.asset_key.to_user_string(),
                    data.check_name,
                    data.passed,
                    data.description or "",
                    data.metadata,
                )
            )
        elif kind == dg.DagsterEventType.STEP_OUTPUT and data.metadata:
            facts.outputs.append((event.step_key or "", data.metadata))
        elif kind == dg.DagsterEventType.STEP_FAILURE:
            facts.failed_steps += 1
            if not facts.cause:
                facts.cause = _own_cause(data.error)
                facts.failed_step = event.step_key or ""
        elif kind == dg.DagsterEventType.RUN_FAILURE:
            run_failure = record.event_log_entry.message or ""
    if not facts.cause and run_failure:
        facts.cause = run_failure
    return facts


def _deploy_block(key: str, kind: str, metadata: Mapping[str, Any]) -> list[str]:
    mode = _text(metadata.get("mode"))
    lines: list[str] = []
    if mode == "plan":
        previous = _text(metadata.get("previous_digest")) or "none"
        against = "no previous release" if previous == "none" else f"release {previous[:19]}"
        lines.append(f"{key}: plan against {against} (no cluster calls, nothing written)")
        rows = [(r["wave"], r["object"], r["change"], "") for r in table_rows(_text(metadata.get("plan")))]
        seconds: Mapping[str, Any] = {}
    else:
        revision = _value(metadata.get("revision"))
        title = f"release r{revision}" if revision is not None else "dry run (nothing written)"
        lines.append(f"{key}: {title}, digest {_text(metadata.get('digest'))[:19]}")
        rows = [
            (r["wave"], r["object"], r["outcome"], r.get("detail", ""))
            for r in table_rows(_text(metadata.get("objects")))
        ]
        seconds = _value(metadata.get("wave_seconds")) or {}
    waves: dict[str, list[tuple[str, str, str]]] = {}
    for wave, ref, change, detail in rows:
        waves.setdefault(wave, []).append((ref, change, detail))
    for wave in [*(_value(metadata.get("waves")) or []), *seconds]:
        waves.setdefault(wave, [])
    width = max((len(CHANGES.get(c, c)) for rows_ in waves.values() for _, c, _ in rows_), default=0)
    for wave, members in waves.items():
        if not members and wave not in seconds:
            continue
        took = f" ({float(seconds[wave]):.1f} s)" if wave in seconds else ""
        lines.append(f"  wave {wave}{took}" + ("" if members else ": no objects"))
        for ref, change, detail in members:
            why = f"  ({detail})" if detail else ""
            lines.append(f"    {CHANGES.get(change, change):<{width}}  {ref}{why}")
    counts = _value(metadata.get("changes")) or _value(metadata.get("outcomes")) or {}
    changed = [f"{CHANGES.get(k, k)} {v}" for k, v in counts.items() if v]
    lines.append("  " + (", ".join(changed) if changed else "no objects"))
    writes = _value(metadata.get("writes"))
    if mode == "plan":
        pending = sum(v for k, v in counts.items() if k != "same")
        lines.append(f"  writes if applied: {pending}")
    elif writes is not None:
        lines.append(f"  writes: {writes}")
    for warning in _value(metadata.get("warnings")) or []:
        lines.append(f"  warning: {warning}")
    return lines


def _size(count: Any) -> str:
    value = float(count or 0)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return ""


def _backup_block(key: str, partition: str | None, metadata: Mapping[str, Any]) -> list[str]:
    day = f" {partition}" if partition else ""
    lines = [
        f"{key}{day}: {_size(_value(metadata['stored_bytes']))} stored "
        f"({_size(_value(metadata.get('raw_bytes')))} raw) in {_value(metadata.get('duration_seconds'))} s",
        f"  {_text(metadata.get('object_url'))}",
    ]
    deleted = _value(metadata.get("retention_deleted")) or []
    kept = _value(metadata.get("retention_kept"))
    lines.append(f"  retention kept {kept}, deleted " + (", ".join(deleted) if deleted else "none"))
    return lines


def _findings(metadata: Mapping[str, Any]) -> list[str]:
    return [
        " ".join(
            part
            for part in (r.get("severity", ""), r.get("rule", ""), r.get("object", ""), r.get("field", ""))
            if part and part != "``"
        )
        + f": {r.get('message', '')}"
        for r in table_rows(_text(metadata.get("findings")))
    ]


def _scalars(metadata: Mapping[str, Any]) -> list[str]:
    shown = []
    for name, entry in metadata.items():
        value = _value(entry)
        if isinstance(value, bool | int | float) or (isinstance(value, str) and "\n" not in value):
            text = str(value)
            shown.append(
                f"{name}: {text if len(text) <= MAX_SCALAR_CHARS else text[:MAX_SCALAR_CHARS] + '…'}"
            )
        elif isinstance(value, list) and value and all(isinstance(v, str) for v in value):
            shown.append(f"{name}: {', '.join(value)}")
    return [f"  {line}" for line in shown]


def summary_lines(facts: RunFacts, secrets: Iterable[str] | None = None) -> list[str]:
    """The summary, redacted: cause first on failure, the deploy or plan last."""
    secrets = list(environment_secrets() if secrets is None else secrets)
    lines: list[str] = []
    if facts.status != "SUCCESS":
        where = f" in step {facts.failed_step}" if facts.failed_step else ""
        more = f" (and {facts.failed_steps - 1} more failed step(s))" if facts.failed_steps > 1 else ""
        cause = summarize(facts.cause, secrets) if facts.cause else "no error recorded"
        lines.append(f"{facts.status}{where}: {cause}{more}")
    took = f" in {facts.seconds:.1f} s" if facts.seconds is not None else ""
    part = f" partition {facts.partition}" if facts.partition else ""
    lines.append(f"{facts.job_name}{part}: {facts.status}{took}")
    if facts.checks:
        passed = sum(1 for c in facts.checks if c[2])
        lines.append(f"checks: {passed} passed, {len(facts.checks) - passed} failed")
        for key, name, ok, description, metadata in facts.checks:
            findings = _findings(metadata)
            verdict = "pass" if ok else "FAIL"
            errors, warnings = (_value(metadata.get(n)) or 0 for n in ("errors", "warnings"))
            counts = f" ({errors} errors, {warnings} warnings)"
            lines.append(f"  {verdict} {key} {name}" + (counts if "errors" in metadata else ""))
            lines += [f"      {finding}" for finding in findings]
            if not ok and not findings and description:
                lines.append(f"      {description}")
    deploys = []
    for kind, key, metadata in facts.assets:
        if "plan" in metadata or "wave_seconds" in metadata or ("objects" in metadata and "mode" in metadata):
            deploys.append(_deploy_block(key, kind, metadata))
        elif "stored_bytes" in metadata and "object_url" in metadata:
            lines += _backup_block(key, facts.partition, metadata)
        else:
            lines.append(f"{key}: {kind}")
            lines += _scalars(metadata)
    for step, metadata in facts.outputs:
        if step in facts.asset_steps:
            continue  # an asset's output metadata is its materialization's, shown above
        lines.append(f"{step}:")
        lines += _scalars(metadata)
    shown = {str(w) for _, _, metadata in facts.assets for w in _value(metadata.get("warnings")) or []}
    lines += [f"warning: {w}" for w in dict.fromkeys(facts.warnings) if w not in shown]
    for block in deploys:
        lines += block
    return [redact(line, secrets) for line in lines]
