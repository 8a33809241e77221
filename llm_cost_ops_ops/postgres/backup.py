"""A backup of the platform database to an object store, streamed end to end.

pg_dumpall --globals-only (roles) and pg_dump -Fc -Z0 each stream through zstd, sha256 and
optional AES-256-GCM into a multipart upload, with no temporary file. pg_dump reads a snapshot
exported by a transaction that counts every table's rows meanwhile, so the manifest's counts are
exactly what the dump holds. The manifest is written last, as the commit marker; when anything
fails, uploads are aborted and objects already written are removed, and no manifest appears.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg

from ..storage.base import ObjectStore
from ..storage.crypto import ALGORITHM, EncryptionKey
from ..storage.manifest import BackupLayout, BackupManifest, EncryptionInfo, StoredFile
from ..storage.stream import DEFAULT_COMPRESSION, Compression, upload_stream
from .backup_errors import BackupError
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

    def metadata(self) -> dict[str, str | int | float]:
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
        }


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
    clock: Callable[[], datetime] = utc_now,
    timer: Callable[[], float] = time.monotonic,
) -> BackupResult:
    """Back up the database `dsn` names into `store` under `env`; `source` defaults to a local
    pg_dump fitted to the server.

    Raises StorageError (store unreachable, bucket missing, upload failed), DatabaseUnavailable,
    PgToolMissing, DumpFailed, BackupError. After a failure no manifest exists and no object of
    this run stays visible (a multipart upload that could not be aborted is cleaned by retention).
    """
    store.check()  # before touching the database: a missing bucket fails in milliseconds
    started, begun = clock(), timer()
    layout = BackupLayout.for_run(env, started, run_id)
    written: list[str] = []
    try:
        with connect(dsn, application_name="llm-cost-ops-ops backup") as conn:
            source = source or LocalPgDump(dsn)
            pg_dump_version = source.prepare(conn.info.server_version)
            snapshot = _export_snapshot(conn, dsn)
            # Counting reads every table once more: it runs in the snapshot's own transaction, on
            # its own server backend, while pg_dump streams.
            with ThreadPoolExecutor(1, "row-counts") as pool:
                census = pool.submit(_census, conn, dsn)
                globals_file = None
                if include_globals:
                    globals_file = _store_stream(
                        store, layout.globals_key(key is not None), source.dump_globals(), compression, key
                    )
                    written.append(globals_file.key)
                dump_file = _store_stream(
                    store, layout.dump_key(key is not None), source.dump(snapshot), compression, key
                )
                written.append(dump_file.key)
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
            compression=compression.describe(),
            encryption=EncryptionInfo(algorithm=ALGORITHM, key_fingerprint=key.fingerprint) if key else None,
            tables=tables,
            row_counts_consistent=bool(snapshot),
            migration_version=ledger.latest,
        )
        store.put_bytes(layout.manifest_key, manifest.to_json())
    except BaseException:
        for written_key in written:
            with contextlib.suppress(Exception):
                store.delete(written_key)
        raise
    return BackupResult(manifest, store.url(layout.manifest_key), store.url(dump_file.key), timer() - begun)
