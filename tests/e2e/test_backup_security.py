"""Backups that keep secrets out and work with least privilege, and damaged backups that are news,
against the throwaway PostgreSQL and the local-directory store.

Cases:
- by default the globals carry the roles without their password hashes (no SCRAM verifier in the
  stored globals), and the manifest says so;
- include_role_passwords without an encryption key is refused in one line before anything is
  read or written; with a key (and a superuser) the encrypted globals carry the hashes;
- a non-superuser DSN (the database owner with CREATEDB, as managed services give): the backup
  succeeds with the roles (without passwords); asking for passwords records a warning in the
  manifest and the metadata instead of failing; the restore drill passes with that role as its
  admin DSN;
- globals the role may not read at all (pg_dumpall: permission denied) are skipped with a warning,
  and the database dump is still taken;
- a truncated newest manifest: the drill fails naming the manifest and the parse error and marks
  nothing verified (the older backup stays unverified), restore by that id says it is damaged,
  retention lists it as needing a person.
"""

from __future__ import annotations

import io
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from llm_cost_ops_ops.postgres.backup import run_backup
from llm_cost_ops_ops.postgres.backup_errors import BackupRefused
from llm_cost_ops_ops.postgres.drill import run_restore_drill
from llm_cost_ops_ops.postgres.dump import DumpStream, LocalPgDump, ProcessStream
from llm_cost_ops_ops.postgres.restore import restore_backup
from llm_cost_ops_ops.storage.catalog import read_catalog
from llm_cost_ops_ops.storage.crypto import EncryptionKey
from llm_cost_ops_ops.storage.errors import BackupDamaged
from llm_cost_ops_ops.storage.local import LocalDirectoryStore
from llm_cost_ops_ops.storage.manifest import StoredFile
from llm_cost_ops_ops.storage.retention import RetentionPolicy, plan_retention
from llm_cost_ops_ops.storage.stream import download_stream
from tests.platform_data import populate

pytestmark = pytest.mark.e2e
SCRAM = b"SCRAM-SHA-256$"


def _globals_text(
    store: LocalDirectoryStore, file: StoredFile | None, key: EncryptionKey | None = None
) -> bytes:
    assert file is not None
    out = io.BytesIO()
    download_stream(store.iter_bytes(file.key), out, key=key, what=file.key)
    return out.getvalue()


@pytest.fixture
def platform_dsn(pg_database: str) -> str:
    populate(pg_database, usage_rows=300)
    return pg_database


@pytest.fixture
def a_role_with_a_password(pg_admin_dsn: str) -> Iterator[str]:
    name = f"app_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_admin_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD 'app-secret-pw'").format(sql.Identifier(name)))
    yield name
    with psycopg.connect(pg_admin_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))


@pytest.fixture
def owner_dsn(pg_admin_dsn: str) -> Iterator[str]:
    """A database owned by a non-superuser with CREATEDB, and that role's DSN to it."""
    role, database = f"owner_{uuid.uuid4().hex[:8]}", f"owned_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_admin_dsn, autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE ROLE {} LOGIN CREATEDB PASSWORD 'owner-pw'").format(sql.Identifier(role))
        )
        conn.execute(
            sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(database), sql.Identifier(role))
        )
    host = pg_admin_dsn.split("@", 1)[1].rsplit("/", 1)[0]
    dsn = f"postgresql://{role}:owner-pw@{host}/{database}"
    populate(dsn, usage_rows=300)
    yield dsn
    with psycopg.connect(pg_admin_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database)))
        conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


def test_globals_leave_role_passwords_out_by_default(
    tmp_path: Path, platform_dsn: str, a_role_with_a_password: str
) -> None:
    store = LocalDirectoryStore(tmp_path)
    manifest = run_backup(store, platform_dsn, env="dev", run_id="g").manifest
    text = _globals_text(store, manifest.globals)
    assert a_role_with_a_password.encode() in text and SCRAM not in text
    assert manifest.globals_role_passwords is False and manifest.warnings == ()


def test_role_passwords_only_when_encrypted(
    tmp_path: Path, platform_dsn: str, a_role_with_a_password: str
) -> None:
    store = LocalDirectoryStore(tmp_path)
    with pytest.raises(BackupRefused) as refused:
        run_backup(store, platform_dsn, env="dev", run_id="p", include_role_passwords=True)
    assert "needs an encrypted backup" in str(refused.value) and "\n" not in str(refused.value)
    assert list(store.list_objects("")) == []

    key = EncryptionKey(os.urandom(32))
    backup = run_backup(store, platform_dsn, env="dev", run_id="p", include_role_passwords=True, key=key)
    assert backup.manifest.globals_role_passwords is True
    assert SCRAM in _globals_text(store, backup.manifest.globals, key)
    assert backup.metadata()["globals"] == "roles with password hashes (encrypted)"


def test_a_database_owner_without_superuser_backs_up_and_drills(tmp_path: Path, owner_dsn: str) -> None:
    store = LocalDirectoryStore(tmp_path)
    backup = run_backup(store, owner_dsn, env="dev", run_id="owner")
    assert backup.manifest.globals is not None and backup.manifest.warnings == ()
    assert backup.manifest.tables["public.usage_records"] == 300

    key = EncryptionKey(os.urandom(32))
    asked = run_backup(store, owner_dsn, env="dev", run_id="owner2", include_role_passwords=True, key=key)
    assert asked.manifest.globals is not None and asked.manifest.globals_role_passwords is False
    [warning] = asked.manifest.warnings
    assert "role passwords not included" in warning and "cannot read pg_authid" in warning
    assert asked.metadata()["warnings"] == [warning] and "owner-pw" not in warning

    drill = run_restore_drill(store, owner_dsn, env="dev", run_id="drill", key=key)
    assert drill.passed, drill.summary()


class _DeniedGlobals(LocalPgDump):
    """pg_dumpall as a role that may read none of the globals: a real process failing as it does."""

    def dump_globals(self, *, role_passwords: bool = False) -> DumpStream:
        script = "echo 'pg_dumpall: error: query failed: ERROR:  permission denied for table pg_authid' >&2; exit 1"
        return ProcessStream(["sh", "-c", script], dict(os.environ), "pg_dumpall --globals-only")


def test_unreadable_globals_are_skipped_not_fatal(tmp_path: Path, platform_dsn: str) -> None:
    store = LocalDirectoryStore(tmp_path)
    backup = run_backup(store, platform_dsn, env="dev", run_id="deny", source=_DeniedGlobals(platform_dsn))
    assert backup.manifest.globals is None and backup.manifest.dump.raw_bytes > 0
    assert backup.manifest.warnings == (
        "globals (roles) not included: pg_dumpall: permission denied for table pg_authid",
    )
    assert backup.metadata()["globals"] == "not taken"
    assert [o.key for o in store.list_objects("") if ".globals." in o.key] == []


def test_a_truncated_newest_manifest_is_news(tmp_path: Path, platform_dsn: str, pg_admin_dsn: str) -> None:
    store = LocalDirectoryStore(tmp_path)
    older = run_backup(store, platform_dsn, env="dev", run_id="old", include_globals=False).manifest
    newest = run_backup(store, platform_dsn, env="dev", run_id="new", include_globals=False).manifest
    manifest_key = newest.dump.key.replace(".dump.zst", ".manifest.json")
    path = tmp_path / manifest_key
    path.write_bytes(path.read_bytes()[:40])

    with pytest.raises(BackupDamaged) as damaged:
        run_restore_drill(store, pg_admin_dsn, env="dev", run_id="drill")
    message = str(damaged.value)
    assert store.url(manifest_key) in message and "Invalid JSON" in message
    assert older.backup_id in message and "restore_drill_dev" in message
    catalog = read_catalog(store, "dev")
    assert catalog.newest(verified=True) is None  # the older backup was not marked verified

    with pytest.raises(BackupDamaged, match=rf"backup {newest.backup_id} of dev is damaged: .*Invalid JSON"):
        restore_backup(store, pg_admin_dsn, env="dev", backup_id=newest.backup_id)

    plan = plan_retention(catalog, RetentionPolicy(), newest.finished_at)
    assert any(store.url(manifest_key) in line for line in plan.untouchable)
    assert older.backup_id not in plan.delete
