"""Backups, restore drills and restores against a real PostgreSQL and a real S3 server (SeaweedFS),
and the local-directory store.

Cases:
- full cycle on S3 and on a local directory: backup -> catalog (complete, not verified; restore
  refuses an undrilled default) -> drill (all checks pass, marker written) -> restore of the
  newest verified backup into a new database -> row counts equal the source's and checksums the
  manifest's; restoring again into that database needs its name repeated; globals restore; ages
- encryption: objects are ciphertext; without the key the error names the key variable and
  fingerprint; a wrong key is refused; with the key the drill passes
- a tampered object fails its checksum before pg_restore runs, and no database is left behind
- a drill whose counts do not match the manifest fails and writes no marker
- bad input: a wrong role (password never shown), a closed port, wrong S3 credentials (secret
  never shown), a missing bucket (created only when configured), an unreachable S3 endpoint, a
  pg_dump older than the server
- a dump object without a manifest is incomplete and never offered for restore
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from llm_cost_ops_ops.postgres.backup import run_backup
from llm_cost_ops_ops.postgres.backup_errors import PgToolMissing, RestoreRefused
from llm_cost_ops_ops.postgres.contents import table_row_counts
from llm_cost_ops_ops.postgres.drill import run_restore_drill
from llm_cost_ops_ops.postgres.dump import LocalPgDump
from llm_cost_ops_ops.postgres.errors import DatabaseUnavailable
from llm_cost_ops_ops.postgres.restore import drop_database, restore_backup
from llm_cost_ops_ops.storage.base import ObjectStore
from llm_cost_ops_ops.storage.catalog import backup_ages, read_catalog
from llm_cost_ops_ops.storage.crypto import KEY_ENV, EncryptionKey
from llm_cost_ops_ops.storage.errors import (
    BackupNotFound,
    BucketMissing,
    ChecksumMismatch,
    DecryptionFailed,
    EncryptionKeyMissing,
    StorageAccessDenied,
    StorageUnavailable,
)
from llm_cost_ops_ops.storage.local import LocalDirectoryStore
from llm_cost_ops_ops.storage.manifest import VERIFIED_SUFFIX
from llm_cost_ops_ops.storage.s3 import S3Settings, S3Store
from tests.platform_data import LATEST_MIGRATION, populate

pytestmark = pytest.mark.e2e


def s3_store(server: Any, bucket: str = "", **overrides: Any) -> S3Store:
    settings: dict[str, Any] = {
        "bucket": bucket or server.new_bucket(),
        "prefix": "postgres",
        "endpoint_url": server.endpoint,
        "access_key_id": server.access_key,
        "secret_access_key": server.secret_key,
        "addressing_style": "path",
        "max_attempts": 3,
        "connect_timeout": 2,
    }
    return S3Store(S3Settings(**{**settings, **overrides}))


@pytest.fixture
def platform_dsn(pg_database: str) -> str:
    populate(pg_database, usage_rows=3000)
    return pg_database


@pytest.fixture(params=["s3", "local"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ObjectStore:
    if request.param == "s3":
        return s3_store(request.getfixturevalue("s3_server"))
    return LocalDirectoryStore(tmp_path / "backups")


@pytest.fixture
def restored(pg_admin_dsn: str) -> Iterator[list[str]]:
    """Names of databases a test restored into, dropped afterwards."""
    names: list[str] = []
    yield names
    for name in names:
        drop_database(pg_admin_dsn, name)


def counts_of(dsn: str) -> dict[str, int]:
    with psycopg.connect(dsn) as conn:
        return table_row_counts(conn)


def other_db(dsn: str, name: str) -> str:
    return dsn.rsplit("/", 1)[0] + f"/{name}"


def test_full_cycle(store: ObjectStore, platform_dsn: str, pg_admin_dsn: str, restored: list[str]) -> None:
    backup = run_backup(store, platform_dsn, env="dev", run_id="run-1")
    manifest = backup.manifest
    assert manifest.tables == counts_of(platform_dsn) and manifest.tables["public.usage_records"] == 3000
    assert manifest.migration_version == LATEST_MIGRATION and manifest.row_counts_consistent
    assert manifest.globals is not None and manifest.encryption is None
    metadata = backup.metadata()
    assert (
        metadata["object_url"].endswith(".dump.zst")
        and metadata["sha256_stored"] == manifest.dump.sha256_stored
    )

    catalog = read_catalog(store, "dev")
    assert [e.backup_id for e in catalog.entries] == [manifest.backup_id] and catalog.newest(
        verified=True
    ) is None
    with pytest.raises(BackupNotFound, match="run a restore drill"):
        restore_backup(store, pg_admin_dsn, env="dev")

    drill = run_restore_drill(store, pg_admin_dsn, env="dev", run_id="drill-1")
    assert drill.passed, drill.summary()
    assert {c.name for c in drill.checks} >= {"row counts", "migration ledger", "indexes valid"}
    assert drill.marker_url and drill.marker_url.endswith(VERIFIED_SUFFIX)
    with psycopg.connect(pg_admin_dsn) as conn:
        left = conn.execute("SELECT datname FROM pg_database WHERE datname LIKE 'drill_%'").fetchall()
    assert left == []

    result = restore_backup(store, pg_admin_dsn, env="dev", include_globals=True)
    restored.append(result.database)
    assert result.created and result.backup_id == manifest.backup_id and result.globals_restored
    assert counts_of(other_db(pg_admin_dsn, result.database)) == manifest.tables
    with pytest.raises(RestoreRefused, match="repeat its name"):
        restore_backup(store, pg_admin_dsn, env="dev", target_database=result.database)
    again = restore_backup(
        store, pg_admin_dsn, env="dev", target_database=result.database, confirm_existing=result.database
    )
    assert not again.created and counts_of(other_db(pg_admin_dsn, result.database)) == manifest.tables

    ages = backup_ages(
        read_catalog(store, "dev"), manifest.finished_at + (manifest.finished_at - manifest.started_at)
    )
    assert ages.newest_id == ages.newest_verified_id == manifest.backup_id
    assert ages.newest is not None and ages.newest.total_seconds() >= 0


def test_encryption_with_and_without_the_key(
    s3_server: Any, platform_dsn: str, pg_admin_dsn: str, restored: list[str]
) -> None:
    store = s3_store(s3_server)
    key = EncryptionKey(os.urandom(32))
    manifest = run_backup(store, platform_dsn, env="staging", run_id="enc", key=key).manifest
    assert manifest.dump.key.endswith(".dump.zst.enc") and manifest.encryption is not None
    assert manifest.encryption.key_fingerprint == key.fingerprint
    assert b"usage_records" not in store.get_bytes(manifest.dump.key)
    assert key.fingerprint in store.get_bytes(manifest.dump.key.rsplit(".", 3)[0] + ".manifest.json").decode()

    with pytest.raises(EncryptionKeyMissing) as missing:
        run_restore_drill(store, pg_admin_dsn, env="staging", run_id="d")
    assert KEY_ENV in str(missing.value) and key.fingerprint in str(missing.value)
    with pytest.raises(DecryptionFailed, match="not the configured key"):
        run_restore_drill(store, pg_admin_dsn, env="staging", run_id="d", key=EncryptionKey(os.urandom(32)))
    assert run_restore_drill(store, pg_admin_dsn, env="staging", run_id="d", key=key).passed


def test_tampered_object_fails_before_pg_restore(
    tmp_path: Path, platform_dsn: str, pg_admin_dsn: str
) -> None:
    store = LocalDirectoryStore(tmp_path)
    manifest = run_backup(store, platform_dsn, env="dev", run_id="t", include_globals=False).manifest
    path = tmp_path / manifest.dump.key
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    target = f"tampered_{uuid.uuid4().hex[:8]}"
    with pytest.raises(ChecksumMismatch):
        restore_backup(store, pg_admin_dsn, env="dev", backup_id=manifest.backup_id, target_database=target)
    with psycopg.connect(pg_admin_dsn) as conn:
        assert conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (target,)).fetchone() is None


def test_drill_that_does_not_match_writes_no_marker(
    tmp_path: Path, platform_dsn: str, pg_admin_dsn: str
) -> None:
    store = LocalDirectoryStore(tmp_path)
    backup = run_backup(store, platform_dsn, env="dev", run_id="m", include_globals=False)
    manifest_path = tmp_path / backup.manifest.dump.key.replace(".dump.zst", ".manifest.json")
    tables = dict(backup.manifest.tables, **{"public.usage_records": 2999})
    manifest_path.write_bytes(backup.manifest.model_copy(update={"tables": tables}).to_json())
    drill = run_restore_drill(store, pg_admin_dsn, env="dev", run_id="d")
    assert not drill.passed and drill.marker_url is None
    assert "public.usage_records: 3000 rows, manifest 2999" in drill.summary()
    assert read_catalog(store, "dev").newest(verified=True) is None


def test_wrong_database_credentials(tmp_path: Path, platform_dsn: str) -> None:
    store = LocalDirectoryStore(tmp_path)
    host_part = platform_dsn.split("@", 1)[1]
    with pytest.raises(DatabaseUnavailable) as caught:
        run_backup(store, f"postgresql://nobody:s3cr3t-pw@{host_part}", env="dev", run_id="x")
    assert "s3cr3t-pw" not in str(caught.value) and "nobody" in str(caught.value)
    closed = platform_dsn.replace(host_part.split("/")[0], "127.0.0.1:1")
    with pytest.raises(DatabaseUnavailable, match="cannot connect"):
        run_backup(store, closed, env="dev", run_id="x")
    assert list(store.list_objects("")) == []


def test_missing_bucket_is_created_only_when_configured(s3_server: Any, platform_dsn: str) -> None:
    bucket = f"absent-{uuid.uuid4().hex[:10]}"
    with pytest.raises(BucketMissing, match="create_bucket"):
        run_backup(s3_store(s3_server, bucket), platform_dsn, env="dev", run_id="x")
    created = s3_store(s3_server, bucket, create_bucket=True)
    run_backup(created, platform_dsn, env="dev", run_id="x", include_globals=False)
    assert len(read_catalog(created, "dev").entries) == 1


def test_wrong_storage_credentials(s3_server: Any, platform_dsn: str) -> None:
    store = s3_store(s3_server, secret_access_key="wrong-secret-value")
    with pytest.raises(StorageAccessDenied, match="check the access key") as caught:
        run_backup(store, platform_dsn, env="dev", run_id="x")
    assert "wrong-secret-value" not in str(caught.value)


def test_unreachable_storage(s3_server: Any, platform_dsn: str) -> None:
    store = s3_store(
        s3_server, "any-bucket", endpoint_url="http://127.0.0.1:1", max_attempts=2, connect_timeout=1
    )
    with pytest.raises(StorageUnavailable, match=r"127\.0\.0\.1:1"):
        run_backup(store, platform_dsn, env="dev", run_id="x")


def test_older_pg_dump_is_refused(tmp_path: Path, platform_dsn: str) -> None:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for name in ("pg_dump", "pg_dumpall"):
        (bindir / name).write_text(f"#!/bin/sh\necho '{name} (PostgreSQL) 9.6.24'\n")
        (bindir / name).chmod(0o755)
    store = LocalDirectoryStore(tmp_path / "store")
    with pytest.raises(PgToolMissing, match=r"found 9\.6\.24"):
        run_backup(
            store, platform_dsn, env="dev", run_id="x", source=LocalPgDump(platform_dsn, search_dirs=[bindir])
        )
    assert list(store.list_objects("")) == []


def test_incomplete_backup_is_never_offered(tmp_path: Path, platform_dsn: str) -> None:
    store = LocalDirectoryStore(tmp_path)
    manifest = run_backup(store, platform_dsn, env="dev", run_id="ok", include_globals=False).manifest
    store.delete(manifest.dump.key.replace(".dump.zst", ".manifest.json"))
    catalog = read_catalog(store, "dev")
    assert catalog.entries == () and [i.base for i in catalog.incomplete] == [
        manifest.dump.key[: -len(".dump.zst")]
    ]
    with pytest.raises(BackupNotFound):
        run_restore_drill(store, "postgresql://unused@127.0.0.1:1/x", env="dev", run_id="d")
