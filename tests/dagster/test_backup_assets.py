"""Backups in Dagster: `backup_<env>`, `restore_drill_<env>`, `restore_<env>`, retention, and the
migrations' backup gate.

Cases: backup_dev on the embedded local store materializes backups/dev (partition of the day) with
size, checksum and object URL metadata; restore_drill_dev restores it into a scratch database and
materializes backups/dev/verified; restore_dev into a new database brings back the same row counts;
backup_retention_dev in dry run deletes nothing; the backup gate with policy `refuse` and no backup
refuses before any migration, and with `backup-first` takes a backup and then migrates.
"""

from __future__ import annotations

import logging
from types import SimpleNamespace

import dagster as dg
import psycopg
import pytest

from llm_cost_ops_ops.definitions import defs
from llm_cost_ops_ops.defs.backup_storage import BackupStorageResource
from llm_cost_ops_ops.defs.backups import BackupGateRefused, backup_gate, backups_key, verified_key
from llm_cost_ops_ops.defs.databases import DatabaseResource
from llm_cost_ops_ops.defs.kubernetes import KubernetesResource
from llm_cost_ops_ops.environments import load_environments
from llm_cost_ops_ops.postgres.migrator import Migrator
from llm_cost_ops_ops.storage.catalog import read_catalog

pytestmark = pytest.mark.dagster

DSN_VARIABLE = "LLM_COST_OPS_OPS_DEV_DATABASE_URL"


@pytest.fixture
def dev_database(pg_database, monkeypatch, tmp_path):
    """The dev database with the platform schema and a few rows; backups under tmp_path."""
    monkeypatch.setenv(DSN_VARIABLE, pg_database)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    Migrator(pg_database).run()
    with psycopg.connect(pg_database, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO pricing_tables (provider, model, input_price_per_million, output_price_per_million, "
            "effective_date) "
            "SELECT 'openai', 'gpt-' || g, 1.5, 2.5, now() FROM generate_series(1, 25) g"
        )
    return pg_database


def _metadata(result, key):
    events = [e for e in result.get_asset_materialization_events() if e.asset_key == key]
    return {k: v.value for k, v in events[-1].materialization.metadata.items()}


def test_backup_drill_restore_cycle(dev_database, tmp_path):
    instance = dg.DagsterInstance.ephemeral()
    backup = defs.resolve_job_def("backup_dev").execute_in_process(
        instance=instance, partition_key="2026-11-26"
    )
    assert backup.success
    metadata = _metadata(backup, backups_key("dev"))
    assert any("sha256" in k for k in metadata), metadata
    store = BackupStorageResource(local_dir=str(tmp_path / "home" / "backups")).store()
    catalog = read_catalog(store, "dev")
    assert catalog.newest() is not None and catalog.newest(verified=True) is None

    drill = defs.resolve_job_def("restore_drill_dev").execute_in_process(instance=instance)
    assert drill.success
    assert read_catalog(store, "dev").newest(verified=True) is not None
    assert _metadata(drill, verified_key("dev"))

    target = "restored_dev_copy"
    restore = defs.resolve_job_def("restore_dev").execute_in_process(
        instance=instance,
        run_config={"ops": {"restore_backup_dev": {"config": {"target_database": target}}}},
    )
    assert restore.success
    restored = dev_database.rsplit("/", 1)[0] + f"/{target}"
    with psycopg.connect(restored) as conn:
        assert conn.execute("SELECT count(*) FROM pricing_tables").fetchone()[0] == 25
    with psycopg.connect(dev_database, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE {target} WITH (FORCE)")

    retention = defs.resolve_job_def("backup_retention_dev").execute_in_process(instance=instance)
    assert retention.success
    assert read_catalog(store, "dev").newest() is not None  # a dry run deletes nothing


def test_backup_gate_refuses_or_backs_up_first(dev_database, tmp_path):

    dev = load_environments()["dev"]
    storage = BackupStorageResource(local_dir=str(tmp_path / "gate"))
    events: list = []
    # What the gate uses of a run's context: its id, its log, and the event it records.
    context = SimpleNamespace(
        run=SimpleNamespace(run_id="gate-test"), log=logging.getLogger("gate"), log_event=events.append
    )

    refuse = dev.model_copy(
        update={"migrations": dev.migrations.model_copy(update={"backup_gate": "refuse"})}
    )
    with pytest.raises(BackupGateRefused, match=r"dev: no backup .* run backup_dev first"):
        backup_gate(refuse, storage, DatabaseResource(), KubernetesResource())(context)
    assert read_catalog(storage.store(), "dev").newest() is None

    first = dev.model_copy(
        update={"migrations": dev.migrations.model_copy(update={"backup_gate": "backup-first"})}
    )
    backup_gate(first, storage, DatabaseResource(), KubernetesResource())(context)
    assert read_catalog(storage.store(), "dev").newest() is not None
    assert [e.asset_key for e in events] == [backups_key("dev")]
    backup_gate(refuse, storage, DatabaseResource(), KubernetesResource())(context)  # now young enough
