"""Faults while backing up: S3 answering 500, connections dropped mid-upload and mid-download, a
pg_dump killed mid-stream. S3 is SeaweedFS behind a fault-injecting proxy (tests/fault_proxy.py);
the database dumps to about 20 MB, several 5 MiB parts once compressed.

Cases:
- one 500 on an UploadPart, or one connection dropped mid-part: botocore retries, the backup
  completes and its restore drill passes
- 500s or dropped connections on every UploadPart: StorageUnavailable after the retries, the
  multipart upload aborted, no object, no manifest, nothing pending
- the manifest write failing: the dump and globals objects are removed again, no manifest
- pg_dump killed mid-stream: DumpFailed, the multipart upload aborted, nothing visible
- the globals failing while the database dump streams beside them: DumpFailed naming pg_dumpall,
  the finished database dump removed again, nothing visible
- a download cut mid-stream resumes with a ranged GET and the restore drill passes
- retention never deletes because of a failure: a failed run leaves nothing to clean, and when the
  store cannot be listed the retention run fails before deleting anything
"""

from __future__ import annotations

import os
import signal
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from psycopg import sql

from llm_cost_ops_ops.postgres.backup import run_backup
from llm_cost_ops_ops.postgres.backup_errors import DumpFailed
from llm_cost_ops_ops.postgres.drill import run_restore_drill
from llm_cost_ops_ops.postgres.dump import DumpStream, LocalPgDump, ProcessStream
from llm_cost_ops_ops.postgres.restore import drop_database
from llm_cost_ops_ops.storage.catalog import read_catalog
from llm_cost_ops_ops.storage.errors import StorageUnavailable
from llm_cost_ops_ops.storage.retention import RetentionPolicy, plan_retention
from llm_cost_ops_ops.storage.s3 import S3Settings, S3Store
from tests.fault_proxy import Fault, FaultProxy, upload_part
from tests.platform_data import populate

pytestmark = pytest.mark.e2e
MIB = 1024 * 1024


@pytest.fixture(scope="module")
def big_dsn(pg_admin_dsn: str) -> Iterator[str]:
    name = f"big_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_admin_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    dsn = pg_admin_dsn.rsplit("/", 1)[0] + f"/{name}"
    populate(dsn, usage_rows=45_000)
    yield dsn
    drop_database(pg_admin_dsn, name)


@pytest.fixture(scope="module")
def module_proxy(s3_server: Any) -> Iterator[FaultProxy]:
    proxy = FaultProxy("127.0.0.1", s3_server.s3_port).start()
    yield proxy
    proxy.stop()


@pytest.fixture
def proxy(module_proxy: FaultProxy) -> FaultProxy:
    module_proxy.faults.clear()
    return module_proxy


@pytest.fixture
def store(s3_server: Any, proxy: FaultProxy) -> S3Store:
    settings = S3Settings(
        bucket=s3_server.new_bucket(),
        prefix="faults",
        endpoint_url=proxy.endpoint,
        access_key_id=s3_server.access_key,
        secret_access_key=s3_server.secret_key,
        addressing_style="path",
        max_attempts=3,
        connect_timeout=2,
        read_timeout=10,
        part_size=5 * MIB,
    )
    return S3Store(settings)


def assert_nothing_visible(store: S3Store) -> None:
    catalog = read_catalog(store, "prod")
    assert list(store.list_objects("")) == []
    assert catalog.entries == () and catalog.incomplete == () and catalog.pending == ()


def is_manifest_put(method: str, path: str) -> bool:
    return method == "PUT" and ".manifest.json" in path


@pytest.mark.parametrize("action", ["status", "drop"])
def test_one_failed_part_is_retried(
    action: str, store: S3Store, proxy: FaultProxy, big_dsn: str, pg_admin_dsn: str
) -> None:
    proxy.faults.append(Fault(upload_part, action=action, times=1, after_bytes=MIB))
    backup = run_backup(store, big_dsn, env="prod", run_id=f"retry-{action}")
    assert proxy.faults[0].fired == 1 and backup.manifest.dump.stored_bytes > 5 * MIB
    assert run_restore_drill(store, pg_admin_dsn, env="prod", run_id="d").passed


@pytest.mark.parametrize("action", ["status", "drop"])
def test_every_part_failing_leaves_nothing(
    action: str, store: S3Store, proxy: FaultProxy, big_dsn: str
) -> None:
    proxy.faults.append(Fault(upload_part, action=action, times=-1, after_bytes=MIB))
    with pytest.raises(StorageUnavailable, match="upload part") as caught:
        run_backup(store, big_dsn, env="prod", run_id=f"broken-{action}")
    assert store.settings.secret_access_key not in str(caught.value)
    proxy.faults.clear()
    assert_nothing_visible(store)
    plan = plan_retention(
        read_catalog(store, "prod"), RetentionPolicy(), datetime.now(UTC) + timedelta(days=2)
    )
    assert plan.delete == () and plan.clean_incomplete == () and plan.abort_uploads == ()


def test_failed_manifest_write_removes_the_dump(store: S3Store, proxy: FaultProxy, big_dsn: str) -> None:
    proxy.faults.append(Fault(is_manifest_put, times=-1))
    with pytest.raises(StorageUnavailable, match=r"manifest\.json"):
        run_backup(store, big_dsn, env="prod", run_id="no-manifest")
    proxy.faults.clear()
    assert_nothing_visible(store)


class KillingSource(LocalPgDump):
    """Local pg_dump that is SIGKILLed once `after` bytes have been read from it."""

    def __init__(self, dsn: str, after: int):
        super().__init__(dsn)
        self.after = after

    def dump(self, snapshot: str | None) -> DumpStream:
        stream: Any = super().dump(snapshot)
        original, seen = stream.read, [0]

        def read(size: int) -> bytes:
            data = original(size)
            seen[0] += len(data)
            if seen[0] >= self.after and stream.process.poll() is None:
                os.kill(stream.process.pid, signal.SIGKILL)
            return data

        stream.read = read
        return stream


def test_pg_dump_killed_mid_stream(store: S3Store, proxy: FaultProxy, big_dsn: str) -> None:
    with pytest.raises(DumpFailed, match="killed by signal SIGKILL"):
        run_backup(store, big_dsn, env="prod", run_id="killed", source=KillingSource(big_dsn, 17 * MIB))
    assert any(upload_part(m, p) for m, p in proxy.requests)  # it had got as far as a part
    assert_nothing_visible(store)


class FailingGlobals(LocalPgDump):
    """Local pg_dump whose globals dump exits 3 after a message (not a permission problem)."""

    def dump_globals(self, *, role_passwords: bool = False) -> DumpStream:
        script = "import sys; sys.stderr.write('pg_dumpall: error: out of memory\\n'); sys.exit(3)"
        return ProcessStream([sys.executable, "-c", script], dict(os.environ), "pg_dumpall --globals-only")


def test_globals_failing_beside_the_dump_leaves_nothing(store: S3Store, big_dsn: str) -> None:
    with pytest.raises(DumpFailed, match=r"pg_dumpall --globals-only exited with status 3: .*out of memory"):
        run_backup(store, big_dsn, env="prod", run_id="no-roles", source=FailingGlobals(big_dsn))
    assert_nothing_visible(store)


def test_download_cut_mid_stream_resumes(
    store: S3Store, proxy: FaultProxy, big_dsn: str, pg_admin_dsn: str
) -> None:
    manifest = run_backup(store, big_dsn, env="prod", run_id="resume").manifest
    proxy.faults.append(Fault(lambda m, p: m == "GET" and manifest.dump.key in p, action="cut", times=1))
    assert run_restore_drill(store, pg_admin_dsn, env="prod", run_id="d").passed
    assert proxy.faults[0].fired == 1


def test_retention_deletes_nothing_when_listing_fails(
    store: S3Store, proxy: FaultProxy, big_dsn: str
) -> None:
    run_backup(store, big_dsn, env="prod", run_id="keep-me", include_globals=False)
    before = sorted(o.key for o in store.list_objects(""))
    proxy.faults.append(Fault(lambda m, p: m == "GET" and "list-type=2" in p, times=-1))
    with pytest.raises(StorageUnavailable, match="list"):
        read_catalog(store, "prod")
    proxy.faults.clear()
    assert sorted(o.key for o in store.list_objects("")) == before
