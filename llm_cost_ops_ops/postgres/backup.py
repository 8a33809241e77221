"""A backup of the platform database to an object store, streamed end to end.

pg_dumpall --globals-only (roles, without their password hashes unless asked for and encrypted)
and pg_dump -Fc -Z0 each stream through zstd, sha256 and
optional AES-256-GCM into a multipart upload, with no temporary file. pg_dump reads a snapshot
exported by a transaction that counts every table's rows meanwhile, so the manifest's counts are
exactly what the dump holds. The manifest is written last, as the commit marker; when anything
fails, uploads are aborted and objects already written are removed, and no manifest appears.

The role the DSN names needs only to own the database (or read all of it): what it cannot read of
the globals (password hashes, or the globals at all) is left out and said so in the manifest's
warnings, never a reason to fail the database dump.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg

from ..storage.base import ObjectStore
from ..storage.crypto import ALGORITHM, EncryptionKey
from ..storage.manifest import BackupLayout, BackupManifest, EncryptionInfo, StoredFile
from ..storage.stream import DEFAULT_COMPRESSION, Compression, upload_stream
from .backup_errors import BackupError, BackupRefused, DumpFailed
from .connection import connect, mask_dsn, redact
from .contents import LedgerState, ledger_state, table_row_counts
from .dump import DumpSource, DumpStream, LocalPgDump


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class BackupResult:
    """A completed backup, with what Dagster shows as materialization metadata."""

    manifest: BackupManifest
    manifest_url: str
    dump_url: str
    duration_seconds: float

    @property
    def throughput_mb_per_second(self) -> float:
        return self.manifest.dump.raw_bytes / 1e6 / max(self.duration_seconds, 1e-9)

    def metadata(self) -> dict[str, str | int | float | list[str]]:
        m = self.manifest
        return {
            "backup_id": m.backup_id,
            "object_url": self.dump_url,
            "manifest_url": self.manifest_url,
            "raw_bytes": m.dump.raw_bytes,
            "stored_bytes": m.stored_bytes,
            "compression_ratio": round(m.dump.raw_bytes / max(m.dump.stored_bytes, 1), 2),
            "duration_seconds": round(self.duration_seconds, 3),
            "throughput_mb_per_second": round(self.throughput_mb_per_second, 1),
            "sha256_stored": m.dump.sha256_stored,
            "sha256_raw": m.dump.sha256_raw,
            "tables": len(m.tables),
            "rows": sum(m.tables.values()),
            "migration_version": m.migration_version if m.migration_version is not None else "none",
            "encrypted": m.encryption is not None,
            "server_version": m.server_version,
            "globals": _describe_globals(m),
            "warnings": list(m.warnings),
        }


def _describe_globals(m: BackupManifest) -> str:
    if m.globals is None:
        return "not taken"
    return "roles with password hashes (encrypted)" if m.globals_role_passwords else "roles without passwords"


@dataclass(frozen=True)
class GlobalsPlan:
    """What of the globals this role can dump, decided once at the start."""

    role_passwords: bool
    warnings: tuple[str, ...]


def plan_globals(conn: psycopg.Connection[Any], dsn: str, *, role_passwords: bool) -> GlobalsPlan:
    """Password hashes live in pg_authid, which only a superuser reads; without them pg_dumpall
    reads pg_roles, which every role may. Raises BackupError when the privilege cannot be read."""
    if not role_passwords:
        return GlobalsPlan(False, ())
    try:
        row = conn.execute(
            "SELECT current_user, has_table_privilege('pg_catalog.pg_authid', 'SELECT')"
        ).fetchone()
    except psycopg.Error as exc:
        raise BackupError(
            f"reading the privileges of {mask_dsn(dsn)}: {redact(str(exc).strip(), dsn)}"
        ) from None
    user, readable = (str(row[0]), bool(row[1])) if row else ("?", False)
    if readable:
        return GlobalsPlan(True, ())
    return GlobalsPlan(
        False,
        (
            f"role passwords not included: role {user} cannot read pg_authid (only a superuser "
            "can); the globals hold the roles without passwords",
        ),
    )


def refuse_unencrypted_passwords(role_passwords: bool, key: EncryptionKey | None) -> None:
    """Raises BackupRefused when role password hashes would be stored without encryption."""
    if role_passwords and key is None:
        raise BackupRefused(
            "backups.include_role_passwords needs an encrypted backup: set LLM_COST_OPS_OPS_BACKUP_KEY "
            "(or the resource's encryption_key_env), or turn include_role_passwords off"
        )


def _store_stream(
    store: ObjectStore, key: str, dump: DumpStream, compression: Compression, secret: EncryptionKey | None
) -> StoredFile:
    """Upload one dump stream; commit only once the program has exited cleanly."""
    with store.open_upload(key) as upload:
        try:
            stats = upload_stream(dump.read, upload, compression=compression, key=secret)
            dump.finish()
        except BaseException:
            dump.kill()
            raise
        upload.commit()
    return StoredFile(
        key=key,
        raw_bytes=stats.raw_bytes,
        stored_bytes=stats.stored_bytes,
        sha256_raw=stats.sha256_raw,
        sha256_stored=stats.sha256_stored,
    )


_PERMISSION_DENIED = re.compile(r"permission denied for [\w ]+? [\w.\"]+")


def _store_globals(
    store: ObjectStore,
    layout: BackupLayout,
    source: DumpSource,
    plan: GlobalsPlan,
    compression: Compression,
    key: EncryptionKey | None,
    warnings: list[str],
) -> StoredFile | None:
    """The globals, or None (and a warning) when the role may not read them: a managed service's
    owner role without superuser must still get its database dumped."""
    stream = source.dump_globals(role_passwords=plan.role_passwords)
    try:
        return _store_stream(store, layout.globals_key(key is not None), stream, compression, key)
    except DumpFailed as exc:
        denied = _PERMISSION_DENIED.search(str(exc))
        if denied is None:
            raise
        warnings.append(f"globals (roles) not included: pg_dumpall: {denied.group(0)}")
        return None


def _export_snapshot(conn: psycopg.Connection[Any], dsn: str) -> str:
    """Open the transaction whose snapshot pg_dump imports (`--snapshot`) and the counts use."""
    try:
        conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        row = conn.execute("SELECT pg_export_snapshot()").fetchone()
    except psycopg.Error as exc:
        raise BackupError(
            f"exporting a snapshot on {mask_dsn(dsn)}: {redact(str(exc).strip(), dsn)}"
        ) from None
    return str(row[0]) if row else ""


def _census(conn: psycopg.Connection[Any], dsn: str) -> tuple[dict[str, int], LedgerState]:
    try:
        return table_row_counts(conn), ledger_state(conn)
    except psycopg.Error as exc:
        raise BackupError(f"counting rows on {mask_dsn(dsn)}: {redact(str(exc).strip(), dsn)}") from None


def _settle(roles: Future[StoredFile | None] | None, written: list[str]) -> StoredFile | None:
    """The globals' stored file once its upload is done (None when not taken or left out), its
    key recorded for removal should a later step fail. Raises what storing them raised."""
    if roles is None:
        return None
    stored = roles.result()
    if stored is not None:
        written.append(stored.key)
    return stored


def run_backup(
    store: ObjectStore,
    dsn: str,
    *,
    env: str,
    run_id: str,
    source: DumpSource | None = None,
    key: EncryptionKey | None = None,
    compression: Compression = DEFAULT_COMPRESSION,
    include_globals: bool = True,
    include_role_passwords: bool = False,
    scheduled: bool = False,
    clock: Callable[[], datetime] = utc_now,
    timer: Callable[[], float] = time.monotonic,
) -> BackupResult:
    """Back up the database `dsn` names into `store` under `env`; `source` defaults to a local
    pg_dump fitted to the server.

    Role password hashes go into the globals only with `include_role_passwords` and a `key`
    (BackupRefused otherwise, before anything is read or written), and only when the role may read
    them; globals this role cannot dump at all are skipped. Both are recorded in the manifest's
    warnings. `scheduled` marks a backup of the nightly chain (retention keeps it over a manual
    one). Raises StorageError (store unreachable, bucket missing, upload failed),
    DatabaseUnavailable, PgToolMissing, DumpFailed, BackupError. After a failure no manifest exists
    and no object of this run stays visible (a multipart upload that could not be aborted is
    cleaned by retention).
    """
    refuse_unencrypted_passwords(include_role_passwords and include_globals, key)
    store.check()  # before touching the database: a missing bucket fails in milliseconds
    started, begun = clock(), timer()
    layout = BackupLayout.for_run(env, started, run_id)
    written: list[str] = []
    try:
        with connect(dsn, application_name="llm-cost-ops-ops backup") as conn:
            source = source or LocalPgDump(dsn)
            pg_dump_version = source.prepare(conn.info.server_version)
            plan = plan_globals(conn, dsn, role_passwords=include_role_passwords and include_globals)
            warnings = list(plan.warnings)
            snapshot = _export_snapshot(conn, dsn)
            # Counting reads every table once more: it runs in the snapshot's own transaction, on
            # its own server backend, while pg_dump streams (about 5% of pg_dump's time; counting
            # the rows in the dump stream instead costs this process several times that). The
            # globals stream beside the database dump rather than before it.
            with ThreadPoolExecutor(2, "backup") as pool:
                census = pool.submit(_census, conn, dsn)
                roles = (
                    pool.submit(_store_globals, store, layout, source, plan, compression, key, warnings)
                    if include_globals
                    else None
                )
                try:
                    dump_file = _store_stream(
                        store, layout.dump_key(key is not None), source.dump(snapshot), compression, key
                    )
                except BaseException:
                    with contextlib.suppress(Exception):  # the dump's failure is the one to report
                        _settle(roles, written)
                    raise
                written.append(dump_file.key)
                globals_file = _settle(roles, written)
                tables, ledger = census.result()
            conn.execute("COMMIT")
            database = conn.info.dbname
            server_version = conn.info.parameter_status("server_version") or str(conn.info.server_version)
        manifest = BackupManifest(
            backup_id=layout.backup_id,
            run_id=run_id,
            env=env,
            database=database,
            source=source.description,
            server_version=server_version,
            pg_dump_version=pg_dump_version,
            started_at=started,
            finished_at=clock(),
            dump=dump_file,
            globals=globals_file,
            globals_role_passwords=globals_file is not None and plan.role_passwords,
            compression=compression.describe(),
            encryption=EncryptionInfo(algorithm=ALGORITHM, key_fingerprint=key.fingerprint) if key else None,
            tables=tables,
            row_counts_consistent=bool(snapshot),
            migration_version=ledger.latest,
            warnings=tuple(warnings),
            scheduled=scheduled,
        )
        store.put_bytes(layout.manifest_key, manifest.to_json())
    except BaseException:
        for written_key in written:
            with contextlib.suppress(Exception):
                store.delete(written_key)
        raise
    return BackupResult(manifest, store.url(layout.manifest_key), store.url(dump_file.key), timer() - begun)
