"""Backups in Dagster: `backup_<env>`, `restore_drill_<env>`, `restore_<env>`, retention, and the
migrations' backup gate.

Cases: backup_dev on the embedded local store materializes dev_backups (partition of the day); its
metadata is what the store holds: the URLs read back the dump and this backup's manifest, sizes and
sha256s are those of the stored and decompressed bytes, row count, migration version, and
retention's counts (one kept, none deleted); restore_drill_dev restores it into a scratch database,
materializes dev_backups_verified and writes the marker its URL names; restore_dev into a new
database brings back the same row counts; backup_retention_dev in dry run deletes nothing. Of two
manual backups of a day, retention lists the older as deleted (still stored in a dry run, gone after
a real run) and keeps one. The backup gate with policy `refuse` and no backup
refuses before any migration, and with `backup-first` takes a backup and then migrates.
A truncated manifest in the store: backup_retention_dev lists it under `needs_a_person` in its
metadata, logs one warning and sends one notification of kind `retention-needs-a-person`.
"""

from __future__ import annotations

import hashlib
import io
import logging
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import urlsplit
from urllib.request import url2pathname

import dagster as dg
import psycopg
import pytest
import zstandard

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
from llm_cost_ops_ops.storage.manifest import BackupManifest, VerifiedMarker, base_of

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


def _output_metadata(result):
    [output] = [e for e in result.all_events if e.event_type_value == "STEP_OUTPUT"]
    return {k: v.value for k, v in output.step_output_data.metadata.items()}


def _read_url(url: str) -> bytes:
    """The bytes a file:// URL names, read without the store (so the URL itself is checked)."""
    parts = urlsplit(url)
    assert parts.scheme == "file", url
    return Path(url2pathname(parts.path)).read_bytes()


def _migration_version(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        return conn.execute("SELECT max(version) FROM _sqlx_migrations WHERE success").fetchone()[0]


def test_backup_drill_restore_cycle(dev_database, tmp_path, monkeypatch):
    monkeypatch.delenv("LLM_COST_OPS_OPS_BACKUP_KEY", raising=False)
    instance = dg.DagsterInstance.ephemeral()
    backup = defs.resolve_job_def("backup_dev").execute_in_process(
        instance=instance, partition_key="2026-11-26"
    )
    assert backup.success
    metadata = _metadata(backup, backups_key("dev"))
    store = BackupStorageResource(local_dir=str(tmp_path / "home" / "backups")).store()
    catalog = read_catalog(store, "dev")
    entry = catalog.newest()
    assert entry is not None and catalog.newest(verified=True) is None
    assert [e.backup_id for e in catalog.entries] == [metadata["backup_id"]] == [entry.backup_id]

    # The URLs point at the objects in the store; the manifest there is this backup's.
    assert metadata["object_url"] == store.url(entry.manifest.dump.key)
    assert BackupManifest.from_json(_read_url(metadata["manifest_url"]), "manifest") == entry.manifest
    # Size and checksums are those of the stored bytes (the dump is zstd, not encrypted).
    stored = _read_url(metadata["object_url"])
    raw = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(stored)).read()
    globals_size = entry.manifest.globals.stored_bytes if entry.manifest.globals else 0
    assert metadata["stored_bytes"] == len(stored) + globals_size
    assert metadata["sha256_stored"] == hashlib.sha256(stored).hexdigest()
    assert metadata["raw_bytes"] == len(raw) and metadata["sha256_raw"] == hashlib.sha256(raw).hexdigest()
    assert raw.startswith(b"PGDMP")  # pg_dump's custom format
    assert metadata["encrypted"] is False and metadata["scheduled"] is False
    # What the database holds: 25 pricing rows, the migrated schema's version.
    assert entry.manifest.tables["public.pricing_tables"] == 25
    assert metadata["rows"] == sum(entry.manifest.tables.values()) >= 25
    assert metadata["tables"] == len(entry.manifest.tables)
    assert metadata["migration_version"] == _migration_version(dev_database)
    # Retention after the backup: the only backup is kept, nothing deleted.
    assert metadata["retention_deleted"] == [] and metadata["retention_kept"] == 1

    drill = defs.resolve_job_def("restore_drill_dev").execute_in_process(instance=instance)
    assert drill.success
    verified = read_catalog(store, "dev").newest(verified=True)
    assert verified is not None and verified.backup_id == entry.backup_id
    drilled = _metadata(drill, verified_key("dev"))
    assert drilled["backup_id"] == entry.backup_id and drilled["passed"] is True
    marker = VerifiedMarker.from_json(_read_url(drilled["marker_url"]), "marker")
    assert marker.backup_id == entry.backup_id and marker.drill_run_id == drill.run_id
    assert drilled["check row counts"].startswith("ok")

    target = "restored_dev_copy"
    restore = defs.resolve_job_def("restore_dev").execute_in_process(
        instance=instance,
        run_config={"ops": {"restore_backup_dev": {"config": {"target_database": target}}}},
    )
    assert restore.success
    restored_metadata = _output_metadata(restore)
    assert restored_metadata["backup_id"] == entry.backup_id
    assert restored_metadata["database"] == target and restored_metadata["created"] is True
    assert restored_metadata["raw_bytes"] == len(raw)
    restored = dev_database.rsplit("/", 1)[0] + f"/{target}"
    with psycopg.connect(restored) as conn:
        assert conn.execute("SELECT count(*) FROM pricing_tables").fetchone()[0] == 25
    with psycopg.connect(dev_database, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE {target} WITH (FORCE)")

    retention = defs.resolve_job_def("backup_retention_dev").execute_in_process(instance=instance)
    assert retention.success
    kept = _output_metadata(retention)
    assert kept["dry_run"] is True and kept["deleted"] == [] and kept["kept"] == 1
    assert [e.backup_id for e in read_catalog(store, "dev").entries] == [entry.backup_id]


def test_retention_deletes_what_the_policy_does_not_keep(dev_database, tmp_path):
    """dev keeps the newest manual backup of a day (retention_min_keep 1): of two, the older goes,
    listed but still stored in a dry run, gone after a real one."""
    from llm_cost_ops_ops.postgres.backup import run_backup

    store = BackupStorageResource(local_dir=str(tmp_path / "home" / "backups")).store()
    older, newer = (
        run_backup(store, dev_database, env="dev", run_id=run, include_globals=False, scheduled=False)
        for run in ("first", "second")
    )
    ids = [older.manifest.backup_id, newer.manifest.backup_id]
    job = defs.resolve_job_def("backup_retention_dev")
    instance = dg.DagsterInstance.ephemeral()

    dry = _output_metadata(job.execute_in_process(instance=instance))
    assert dry["dry_run"] is True and dry["deleted"] == ids[:1] and dry["kept"] == 1
    assert sorted(e.backup_id for e in read_catalog(store, "dev").entries) == sorted(ids)

    config = {"ops": {"apply_retention_dev": {"config": {"dry_run": False}}}}
    real = _output_metadata(job.execute_in_process(instance=instance, run_config=config))
    assert real["dry_run"] is False and real["deleted"] == ids[:1] and real["kept"] == 1
    assert [e.backup_id for e in read_catalog(store, "dev").entries] == ids[1:]
    older_base = base_of(older.manifest.dump.key)
    assert [o.key for o in store.list_objects("dev/") if o.key.startswith(older_base + ".")] == []


def test_backup_gate_refuses_or_backs_up_first(dev_database, tmp_path):

    dev = load_environments()["dev"]
    storage = BackupStorageResource(local_dir=str(tmp_path / "gate"))
    events: list = []
    # What the gate uses of a run's context: its id and tags, its log, and the event it records.
    context = SimpleNamespace(
        run=SimpleNamespace(run_id="gate-test", tags={}),
        log=logging.getLogger("gate"),
        log_event=events.append,
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
