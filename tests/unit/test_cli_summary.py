"""The run summary the CLI prints last (llm_cost_ops_ops/cli/summary.py), from event metadata.

Cases:
- a failed deploy: the one-line cause first (redacted), the release's waves with each object's change
  symbol, `! skipped` with why, seconds per wave, writes and the revision last;
- a backup: size, duration, object URL, what retention kept and deleted;
- a check's findings, one line each, from its findings table.
"""

from __future__ import annotations

import dagster as dg
import pytest

from llm_cost_ops_ops.cli.summary import RunFacts, summary_lines

pytestmark = pytest.mark.unit

OBJECTS = """| wave | object | outcome | detail |
|---|---|---|---|
| config | ConfigMap/ns/app | configured |  |
| api | Deployment/ns/api | unchanged |  |
| prune | PersistentVolumeClaim/ns/old | skipped | protected kind: confirm it in confirm_prune to delete |"""


def test_deploy_failure_cause_first_release_last():
    facts = RunFacts("deploy_dev", "FAILURE", seconds=3.0, cause="RolloutFailed: api password=hunter22 x")
    facts.failed_step, facts.failed_steps = "dev_deployed", 1
    metadata = {
        "revision": dg.MetadataValue.int(4),
        "digest": "sha256:abcdef0123456789abcdef",
        "objects": dg.MetadataValue.md(OBJECTS),
        "wave_seconds": dg.MetadataValue.json({"config": 0.25, "api": 12.0, "prune": 0.1}),
        "writes": 1,
        "outcomes": {"configured": 1, "skipped": 1, "unchanged": 1},
    }
    facts.assets.append(("materialized", "dev_deployed", metadata))
    lines = summary_lines(facts, secrets=["hunter22"])
    assert lines[0] == "FAILURE in step dev_deployed: RolloutFailed: api password=*** x"
    assert lines[1] == "deploy_dev: FAILURE in 3.0 s"
    assert "dev_deployed: release r4, digest sha256:abcdef012345" in lines
    assert "  wave api (12.0 s)" in lines
    assert any(line.strip() == "~ configured  ConfigMap/ns/app" for line in lines)
    assert any(
        line.strip().startswith("! skipped")
        and line.endswith("(protected kind: confirm it in confirm_prune to delete)")
        for line in lines
    )
    assert lines[-1] == "  writes: 1"


def test_backup_and_findings():
    facts = RunFacts("backup_dev", "SUCCESS", partition="2026-11-26")
    facts.assets.append(
        (
            "materialized",
            "dev_backups",
            {
                "stored_bytes": 2_500_000,
                "raw_bytes": 10_000_000,
                "duration_seconds": 1.5,
                "object_url": "s3://b/dev/x.dump.zst",
                "retention_kept": 7,
                "retention_deleted": ["20261101T000000Z"],
            },
        )
    )
    findings = "| severity | rule | object | field | message |\n|---|---|---|---|---|\n| error | policy/non-root | Deployment/ns/api | `spec.x` | must a \\| b |"
    facts.checks.append(
        (
            "dev_manifests",
            "policy",
            False,
            "",
            {"errors": 1, "warnings": 0, "findings": dg.MetadataValue.md(findings)},
        )
    )
    lines = summary_lines(facts, secrets=[])
    assert "dev_backups 2026-11-26: 2.5 MB stored (10.0 MB raw) in 1.5 s" in lines
    assert "  s3://b/dev/x.dump.zst" in lines
    assert "  retention kept 7, deleted 20261101T000000Z" in lines
    assert "  FAIL dev_manifests policy (1 errors, 0 warnings)" in lines
    assert "      error policy/non-root Deployment/ns/api `spec.x`: must a | b" in lines
