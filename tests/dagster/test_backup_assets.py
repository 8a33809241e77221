"""Backups in Dagster: `backup_<env>`, `restore_drill_<env>`, `restore_<env>`, retention, and the
migrations' backup gate.

Cases: backup_dev on the embedded local store materializes dev_backups (partition of the day) with
size, checksum and object URL metadata; restore_drill_dev restores it into a scratch database and
materializes dev_backups_verified; restore_dev into a new database brings back the same row counts;
backup_retention_dev in dry run deletes nothing; the backup gate with policy `refuse` and no backup
refuses before any migration, and with `backup-first` takes a backup and then migrates.
A truncated manifest in the store: backup_retention_dev lists it under `needs_a_person` in its
metadata, logs one warning and sends one notification of kind `retention-needs-a-person`.
"""

from __future__ import annotations

import logging
from types import SimpleNamespace

import dagster as dg
import psycopg
import pytest

from llm_cost_ops_ops.definitions import defs
from llm_cost_ops_ops.defs.backup_storage import BackupStorageResource
from llm_cost_ops_ops.defs.backups import backup_gate
from llm_cost_ops_ops.defs.databases import DatabaseResource
from llm_cost_ops_ops.defs.keys import backups_key, verified_key
from llm_cost_ops_ops.defs.kubernetes import KubernetesResource
from llm_cost_ops_ops.environments import load_environments
from llm_cost_ops_ops.postgres.backup_errors import BackupGateRefused
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


def test_retention_says_when_a_backup_needs_a_person(dev_database, tmp_path):
    from llm_cost_ops_ops.defs.backups import backup_definitions
    from llm_cost_ops_ops.defs.notify import NotifierResource
    from llm_cost_ops_ops.postgres.backup import run_backup
    from tests.webhook_receiver import WebhookReceiver

    storage = BackupStorageResource(local_dir=str(tmp_path / "damaged"))
    store = storage.store()
    manifest = run_backup(store, dev_database, env="dev", run_id="r", include_globals=False).manifest
    manifest_key = manifest.dump.key.replace(".dump.zst", ".manifest.json")
    store.put_bytes(manifest_key, manifest.to_json()[:30])
    with WebhookReceiver() as hook:
        resources = {
            "backups": storage,
            "databases": DatabaseResource(),
            "kubernetes": KubernetesResource(),
            "notifier": NotifierResource(webhook_url=hook.url(), max_attempts=1),
        }
        definitions = dg.Definitions.merge(
            backup_definitions(load_environments()["dev"]), dg.Definitions(resources=resources)
        )
        instance = dg.DagsterInstance.ephemeral()
        result = definitions.resolve_job_def("backup_retention_dev").execute_in_process(instance=instance)
        bodies = hook.bodies()
    assert result.success
    [output] = [e for e in result.all_events if e.event_type_value == "STEP_OUTPUT"]
    needs = output.step_output_data.metadata["needs_a_person"].value
    assert len(needs) == 1 and store.url(manifest_key) in needs[0] and "Invalid JSON" in needs[0]
    warnings = [
        e.user_message
        for e in instance.all_logs(result.run_id)
        if e.level == logging.WARNING and "needs a person" in e.user_message
    ]
    assert len(warnings) == 1 and store.url(manifest_key) in warnings[0]
    [notice] = bodies
    assert notice["kind"] == "retention-needs-a-person" and notice["environment"] == "dev"
    assert (
        "1 damaged backup(s) need a person" in notice["title"]
        and store.url(manifest_key) in notice["summary"]
    )
