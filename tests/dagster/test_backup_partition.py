"""Which day a backup belongs to, and which backups it may push out.

Cases:
- backup_dev without a partition fails with one line saying it needs its day's partition, and
  nothing is written to the store (no unpartitioned backup no day shows);
- a backup a schedule started is recorded as scheduled (manifest and metadata), one launched by
  hand is not, and the manual one on the same day as the scheduled one deletes nothing: both stay.
"""

from __future__ import annotations

import dagster as dg
import psycopg
import pytest

from llm_cost_ops_ops.definitions import defs
from llm_cost_ops_ops.defs.backup_storage import BackupStorageResource
from llm_cost_ops_ops.defs.backups import SCHEDULE_TAG
from llm_cost_ops_ops.defs.keys import backups_key
from llm_cost_ops_ops.postgres.migrator import Migrator
from llm_cost_ops_ops.storage.catalog import read_catalog

pytestmark = pytest.mark.dagster


@pytest.fixture
def store(pg_database, monkeypatch, tmp_path):
    monkeypatch.setenv("LLM_COST_OPS_OPS_DEV_DATABASE_URL", pg_database)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    Migrator(pg_database).run()
    with psycopg.connect(pg_database, autocommit=True) as conn:
        conn.execute("SELECT 1")
    return BackupStorageResource(local_dir=str(tmp_path / "home" / "backups")).store()


def test_a_backup_without_its_day_is_refused(store):
    result = defs.resolve_job_def("backup_dev").execute_in_process(
        instance=dg.DagsterInstance.ephemeral(), raise_on_error=False
    )
    assert not result.success
    [failure] = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    message = failure.step_failure_data.error.cause.message.strip()
    assert "needs its day's partition" in message and "\n" not in message
    assert read_catalog(store, "dev").entries == ()


def test_a_manual_backup_keeps_the_scheduled_one(store):
    instance = dg.DagsterInstance.ephemeral()
    job = defs.resolve_job_def("backup_dev")
    nightly = job.execute_in_process(
        instance=instance, partition_key="2026-11-26", tags={SCHEDULE_TAG: "nightly_backup_dev"}
    )
    manual = job.execute_in_process(instance=instance, partition_key="2026-11-26")
    assert nightly.success and manual.success

    entries = read_catalog(store, "dev").entries
    assert [e.manifest.scheduled for e in entries] == [True, False]
    [event] = [e for e in manual.get_asset_materialization_events() if e.asset_key == backups_key("dev")]
    metadata = {k: v.value for k, v in event.materialization.metadata.items()}
    assert metadata["scheduled"] is False and metadata["retention_deleted"] == []
