"""Which partition a CLI run gets (llm_cost_ops_ops.cli.submit).

Cases:
- `backup_dev` without `--partition` is created for today's partition (UTC), so the day shows it;
- a partition named explicitly is kept;
- an unpartitioned job gets no partition tag.
The runs are created in a throwaway instance and stopped before they reach the queue.
"""

from __future__ import annotations

from datetime import UTC, datetime

import dagster as dg
import pytest

from llm_cost_ops_ops.cli.submit import PARTITION_TAG, submit_run

pytestmark = pytest.mark.e2e


class Created(Exception):
    """Raised by before_submit: the run exists, nothing is queued."""


def _created_tags(project_root, tmp_path, job_name: str, tags: dict[str, str]) -> dict[str, str]:
    seen: dict[str, str] = {}

    def stop(run: dg.DagsterRun) -> None:
        seen.update(run.tags)
        raise Created

    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("")
    with dg.DagsterInstance.from_config(str(home)) as instance, pytest.raises(Created):
        submit_run(instance, project_root / "workspace.yaml", job_name, {}, tags, before_submit=stop)
    return seen


@pytest.mark.parametrize(
    ("job", "tags", "expected"),
    [
        ("backup_dev", {}, datetime.now(UTC).strftime("%Y-%m-%d")),
        ("backup_dev", {PARTITION_TAG: "2026-11-26"}, "2026-11-26"),
        ("render_and_check_dev", {}, None),
    ],
)
def test_partition_of_a_cli_run(project_root, tmp_path, job, tags, expected):
    assert _created_tags(project_root, tmp_path, job, tags).get(PARTITION_TAG) == expected
