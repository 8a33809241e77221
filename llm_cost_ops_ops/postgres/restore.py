"""Restoring a stored backup into a database, with its checksums verified before pg_restore runs.

The dump is streamed from the store (sha256 of the stored bytes, decryption, decompression, sha256
of the dump) into a local temporary file, because `pg_restore -j` needs a seekable archive; both
checksums must match the manifest before pg_restore starts. By default the target is a new
database (created by the server while the dump downloads); an existing one is restored into (its
objects dropped and recreated) only when the caller repeats its name in `confirm_existing`. A
database this restore created is dropped again when the download, a checksum or pg_restore fails.
"""

from __future__ import annotations

import subprocess
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from ..private_files import open_private
from ..storage.base import ObjectStore
from ..storage.catalog import Catalog, CatalogEntry, read_catalog
from ..storage.crypto import EncryptionKey
from ..storage.errors import BackupDamaged, BackupNotFound
from ..storage.manifest import StoredFile
from ..storage.stream import download_stream, verify
from .backup_errors import RestoreFailed, RestoreRefused
from .connection import connect, redact
from .tools import find_pg_tool, libpq_target, server_major


@dataclass(frozen=True)
class RestoreResult:
    backup_id: str
    database: str
    created: bool
    raw_bytes: int
    download_seconds: float
    restore_seconds: float
    globals_restored: bool
    globals_errors: int

    def metadata(self) -> dict[str, str | int | float | bool]:
        return {
            "backup_id": self.backup_id,
            "database": self.database,
            "created": self.created,
            "raw_bytes": self.raw_bytes,
            "download_seconds": round(self.download_seconds, 3),
            "restore_seconds": round(self.restore_seconds, 3),
            "globals_restored": self.globals_restored,
            "globals_errors": self.globals_errors,
        }


def choose_backup(catalog: Catalog, backup_id: str | None = None, *, verified: bool = True) -> CatalogEntry:
    """The named backup, else the newest (verified, unless `verified` is False) restorable one.

    Raises BackupDamaged for a named backup whose manifest cannot be read or whose objects are
    missing, BackupNotFound when there is none (naming any damaged ones).
    """
    if backup_id:
        named = catalog.get(backup_id)
        if named.missing:
            raise BackupDamaged(f"backup {backup_id} is damaged: missing {', '.join(named.missing)}")
        return named
    entry = catalog.newest(verified=verified)
    if entry is None:
        kind = "verified " if verified else ""
        hint = "; run a restore drill, or name a backup" if verified and catalog.newest() else ""
        damaged = catalog.damage_since(None)
        hint += f"; damaged: {'; '.join(damaged)}" if damaged else ""
        raise BackupNotFound(f"no {kind}backup of {catalog.env} to restore{hint}")
    return entry


def fetch(store: ObjectStore, file: StoredFile, out: Any, key: EncryptionKey | None) -> int:
    """Stream one stored file into `out`, verifying both checksums; returns the raw size.
    Raises ChecksumMismatch, EncryptionKeyMissing, DecryptionFailed, StorageError."""
    what = store.url(file.key)
    stats = download_stream(store.iter_bytes(file.key), out, key=key, what=what)
    verify(stats, sha256_stored=file.sha256_stored, sha256_raw=file.sha256_raw, what=what)
    return stats.raw_bytes


def _major(version: str) -> int:
    head = version.split(".", 1)[0]
    return int(head) if head.isdigit() else 0


def _database_exists(conn: Any, name: str) -> bool:
    return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is not None


def _run(args: list[str], env: dict[str, str], what: str, dsn: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(args, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if done.returncode != 0:
        tail = " | ".join(done.stderr.strip().splitlines()[-8:]) or "no message"
        raise RestoreFailed(f"{what} failed (status {done.returncode}): {redact(tail, dsn)}")
    return done


def restore_backup(
    store: ObjectStore,
    admin_dsn: str,
    *,
    env: str,
    backup_id: str | None = None,
    target_database: str | None = None,
    confirm_existing: str = "",
    include_globals: bool = False,
    key: EncryptionKey | None = None,
    jobs: int = 2,
    keep_owners: bool = True,
    catalog: Catalog | None = None,
    workdir: Path | None = None,
    timer: Callable[[], float] = time.monotonic,
) -> RestoreResult:
    """Restore a backup (default: the newest verified one) through `admin_dsn`'s server.

    The target defaults to a new database named after the backup. Raises BackupNotFound,
    BackupDamaged,
    RestoreRefused (existing target, not confirmed), ChecksumMismatch (before pg_restore runs),
    EncryptionKeyMissing / DecryptionFailed, PgToolMissing, RestoreFailed, DatabaseUnavailable.
    """
    entry = choose_backup(catalog or read_catalog(store, env), backup_id)
    manifest = entry.manifest
    target = target_database or f"{manifest.database}_restore_{manifest.started_at:%Y%m%d_%H%M%S}"
    with connect(admin_dsn, application_name="llm-cost-ops-ops restore") as conn:
        exists = _database_exists(conn, target)
        if exists and confirm_existing != target:
            raise RestoreRefused(
                f"database {target} exists; to restore backup {entry.backup_id} into it (its objects "
                f"are dropped and replaced) repeat its name as confirm_existing"
            )
        major = server_major(conn.info.server_version)
        # pg_restore cannot read archives written by a newer pg_dump.
        pg_restore = find_pg_tool("pg_restore", max(major, _major(manifest.pg_dump_version)))
        psql = find_pg_tool("psql", major) if include_globals and manifest.globals else None

    with (
        tempfile.TemporaryDirectory(prefix="llm-cost-ops-ops-restore-", dir=workdir) as tmp,
        ThreadPoolExecutor(1, "create-database") as pool,
    ):
        # The server creates the new database while the dump downloads; it is dropped again
        # when the download or its checksums fail.
        creating = None if exists else pool.submit(_create_database, admin_dsn, target)
        begun = timer()
        archive, globals_sql = Path(tmp) / "backup.dump", Path(tmp) / "globals.sql"
        try:
            with open_private(archive) as out:
                raw_bytes = fetch(store, manifest.dump, out, key)
            if psql is not None and manifest.globals is not None:
                with open_private(globals_sql) as out:
                    fetch(store, manifest.globals, out, key)
        except BaseException:
            if creating is not None and creating.exception() is None:
                drop_database(admin_dsn, target)
            raise
        downloaded = timer()
        if creating is not None:
            creating.result()

        globals_errors = 0
        if psql is not None:
            target_info, env_vars = libpq_target(admin_dsn)
            # Without ON_ERROR_STOP: roles that already exist fail their CREATE ROLE and keep going.
            done = _run(
                [str(psql.path), "-X", "-q", "-f", str(globals_sql), "-d", target_info],
                env_vars,
                "psql (globals)",
                admin_dsn,
            )
            globals_errors = done.stderr.count("ERROR:")

        target_info, env_vars = libpq_target(admin_dsn, database=target)
        args = [str(pg_restore.path), f"--jobs={max(1, jobs)}", "--exit-on-error", "--no-password"]
        args += [] if keep_owners else ["--no-owner", "--no-privileges"]
        args += ["--clean", "--if-exists"] if exists else []
        try:
            _run([*args, f"--dbname={target_info}", str(archive)], env_vars, "pg_restore", admin_dsn)
        except BaseException:
            if not exists:
                drop_database(admin_dsn, target)
            raise
    return RestoreResult(
        backup_id=entry.backup_id,
        database=target,
        created=not exists,
        raw_bytes=raw_bytes,
        download_seconds=downloaded - begun,
        restore_seconds=timer() - downloaded,
        globals_restored=psql is not None,
        globals_errors=globals_errors,
    )


def _create_database(admin_dsn: str, name: str) -> None:
    with connect(admin_dsn, application_name="llm-cost-ops-ops restore") as conn:
        try:
            conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(name)))
        except psycopg.Error as exc:
            raise RestoreFailed(f"cannot create database {name}: {str(exc).strip()}") from None


def drop_database(admin_dsn: str, name: str) -> None:
    """Drop a database, disconnecting its sessions (PostgreSQL 13+)."""
    with connect(admin_dsn, application_name="llm-cost-ops-ops restore") as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
