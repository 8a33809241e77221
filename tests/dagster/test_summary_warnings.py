"""Warnings in the CLI summary (issue 16, item 9; llm_cost_ops_ops.cli.summary), from real runs'
event logs.

Cases:
- a step that logs a warning (the deploy's "skipped, the cluster has no CRD") and then fails: the
  summary shows the warning although no metadata was recorded;
- a deploy that succeeds with the same warning in its metadata: the summary shows it once, in the
  deploy block.
"""

# No `from __future__ import annotations`: Dagster reads the context annotation.

import dagster as dg
import pytest

from llm_cost_ops_ops.cli.summary import facts_from_records, summary_lines

pytestmark = pytest.mark.dagster

WARNING = "ServiceMonitor/ns/llm-cost-ops: skipped, the cluster has no CRD for monitoring.coreos.com/v1 ServiceMonitor"


def _summary(asset: dg.AssetsDefinition) -> list[str]:
    with dg.instance_for_test() as instance:
        result = dg.materialize([asset], instance=instance, raise_on_error=False)
        run = instance.get_run_by_id(result.run_id)
        records = instance.get_records_for_run(result.run_id, limit=100_000).records
        return summary_lines(facts_from_records(run, records, 1.0), secrets=[])


def test_a_warning_logged_before_a_failure_is_in_the_summary():
    @dg.asset(name="dev_deployed")
    def deployed(context: dg.AssetExecutionContext):
        context.log.warning(WARNING)
        raise RuntimeError("Deployment ns/llm-cost-ops rollout failed")

    lines = _summary(deployed)

    assert lines[0].startswith("FAILURE")
    assert f"warning: {WARNING}" in lines


def test_a_warning_also_in_the_deploy_metadata_is_shown_once():
    @dg.asset(name="dev_deployed")
    def deployed(context: dg.AssetExecutionContext):
        context.log.warning(WARNING)
        return dg.MaterializeResult(
            metadata={
                "revision": 1,
                "digest": "sha256:abc",
                "objects": dg.MetadataValue.md("| wave | object | outcome | detail |\n|---|---|---|---|"),
                "wave_seconds": {},
                "writes": 0,
                "warnings": [WARNING],
            }
        )

    lines = _summary(deployed)

    assert [line for line in lines if WARNING in line] == [f"  warning: {WARNING}"]
