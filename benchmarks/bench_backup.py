"""Backup and restore of a platform-shaped database against a local S3 server (SeaweedFS).

All measured in one run, interleaved over ROUNDS rounds (medians), on the same database and S3:
- the floor: `pg_dump -Fc -Z0 > /dev/null` (reading the database, no compression, no upload)
- stock `pg_dump -Fc > /dev/null` (its built-in zlib)
- the naive two-step: `pg_dump -Fc` to a file, then boto3 `upload_file`
- pgBackRest, only when installed
- this project's backup (pg_dump -Fc -Z0 -> zstd -> sha256 -> multipart upload) in a child
  process; one extra run samples its process tree's memory (PSS) every 20 ms for the peak
Then restores into a new database: the floor `pg_restore -j2` from a local file, this project's
restore (download, both checksums verified, then `pg_restore -j2`), and, for comparison, the
download streamed straight into a single-job pg_restore (checksums known only afterwards).

BENCH_BACKUP_MB sets the database size (default 1024); LLM_COST_OPS_OPS_TEST_DSN an existing
server. The headline figure is the last line.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import psycopg
from psycopg import sql

from llm_cost_ops_ops.postgres.restore import drop_database, restore_backup
from llm_cost_ops_ops.postgres.tools import find_pg_tool, libpq_target, server_major
from llm_cost_ops_ops.storage.catalog import read_catalog
from llm_cost_ops_ops.storage.s3 import S3Settings, S3Store
from llm_cost_ops_ops.storage.stream import download_stream
from tests.platform_data import populate, rows_for_megabytes
from tests.postgres_server import DSN_ENV, ThrowawayPostgres
from tests.s3_server import SeaweedS3

ROUNDS = 3
MB = 1e6
CHILD = """
import json, os, resource, sys
from llm_cost_ops_ops.postgres.backup import run_backup
from llm_cost_ops_ops.storage.s3 import S3Settings, S3Store
args = json.loads(sys.argv[1])
store = S3Store(S3Settings(**args["s3"]))
result = run_backup(store, os.environ["BENCH_DSN"], env="bench", run_id=args["run"])
print(json.dumps({"seconds": result.duration_seconds, "raw": result.manifest.dump.raw_bytes,
                  "stored": result.manifest.stored_bytes,
                  "maxrss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))
"""


def timed(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def tree_pss(pid: int) -> int:
    """Proportional resident bytes (PSS) of a process and all its descendants (0 once gone).

    PSS, not RSS: a page shared by two processes (libraries, a child between fork and exec)
    counts half in each, so the sum is the memory the tree really holds."""
    total, stack = 0, [pid]
    while stack:
        current = stack.pop()
        try:
            for line in Path(f"/proc/{current}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1]) * 1024
            for task in Path(f"/proc/{current}/task").iterdir():
                stack += [int(c) for c in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError, ValueError):
            continue
    return total


class Bench:
    def __init__(self, dsn: str, s3: SeaweedS3, workdir: Path):
        self.dsn, self.s3, self.workdir = dsn, s3, workdir
        with psycopg.connect(dsn) as conn:
            major = server_major(conn.info.server_version)
        self.pg_dump = str(find_pg_tool("pg_dump", major).path)
        self.pg_restore = str(find_pg_tool("pg_restore", major).path)
        self.target, self.env = libpq_target(dsn)
        self.bucket = s3.new_bucket()
        self.settings = {
            "bucket": self.bucket, "prefix": "bench", "endpoint_url": s3.endpoint,
            "addressing_style": "path", "region": "us-east-1",
        }  # fmt: skip
        self.child_env = {
            **self.env, "BENCH_DSN": dsn, "AWS_ACCESS_KEY_ID": s3.access_key,
            "AWS_SECRET_ACCESS_KEY": s3.secret_key,
        }  # fmt: skip
        self.store = S3Store(
            S3Settings(**self.settings, access_key_id=s3.access_key, secret_access_key=s3.secret_key)
        )

    def pg_dump_to(self, out: str, *options: str) -> None:
        with open(out, "wb") as sink:
            subprocess.run(
                [self.pg_dump, "-Fc", *options, f"--dbname={self.target}"],
                stdout=sink,
                env=self.env,
                check=True,
            )

    def naive(self) -> None:
        path = self.workdir / "naive.dump"
        self.pg_dump_to(str(path))
        self.s3.client().upload_file(str(path), self.bucket, f"naive/{uuid.uuid4().hex}.dump")
        path.unlink()

    def ours(self, *, sample_memory: bool = False) -> tuple[float, float, int, dict[str, float]]:
        """(backup seconds, wall seconds with interpreter start, peak tree PSS, result).

        Sampling /proc slows the child (and takes a CPU from it on small machines), so timed
        runs do not sample; one extra run measures memory."""
        args = json.dumps({"s3": self.settings, "run": uuid.uuid4().hex[:8]})
        started = time.perf_counter()
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, args], env=self.child_env, stdout=subprocess.PIPE
        )
        peak, done = [0], threading.Event()

        def sample() -> None:
            while not done.is_set():
                peak[0] = max(peak[0], tree_pss(child.pid))
                time.sleep(0.02)

        sampler = threading.Thread(target=sample)
        if sample_memory:
            sampler.start()
        out, _ = child.communicate()
        done.set()
        if sample_memory:
            sampler.join()
        wall = time.perf_counter() - started
        if child.returncode != 0:
            sys.exit(f"backup child failed with status {child.returncode}")
        result = json.loads(out)
        return result["seconds"], wall, peak[0], result

    def restore_floor(self, archive: Path) -> float:
        name = f"floor_{uuid.uuid4().hex[:8]}"

        def run() -> None:
            with psycopg.connect(self.dsn, autocommit=True) as conn:
                conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(name)))
            target, env = libpq_target(self.dsn, name)
            subprocess.run([self.pg_restore, "-j2", f"--dbname={target}", str(archive)], env=env, check=True)

        seconds = timed(run)
        drop_database(self.dsn, name)
        return seconds

    def restore_ours(self) -> float:
        name = f"ours_{uuid.uuid4().hex[:8]}"
        newest = read_catalog(self.store, "bench").entries[-1].backup_id  # named: no drill needed
        seconds = timed(
            lambda: restore_backup(
                self.store,
                self.dsn,
                env="bench",
                backup_id=newest,
                target_database=name,
                workdir=self.workdir,
            )
        )
        drop_database(self.dsn, name)
        return seconds

    def restore_streamed(self) -> float:
        name = f"stream_{uuid.uuid4().hex[:8]}"
        entry = read_catalog(self.store, "bench").entries[-1]

        def run() -> None:
            with psycopg.connect(self.dsn, autocommit=True) as conn:
                conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(name)))
            target, env = libpq_target(self.dsn, name)
            proc = subprocess.Popen([self.pg_restore, f"--dbname={target}"], stdin=subprocess.PIPE, env=env)
            assert proc.stdin is not None
            download_stream(
                self.store.iter_bytes(entry.manifest.dump.key), proc.stdin, key=None, what="bench"
            )
            proc.stdin.close()
            if proc.wait() != 0:
                sys.exit("streamed pg_restore failed")

        seconds = timed(run)
        drop_database(self.dsn, name)
        return seconds


def main() -> None:
    megabytes = int(os.environ.get("BENCH_BACKUP_MB", "1024"))
    server = None if os.environ.get(DSN_ENV) else ThrowawayPostgres().start()
    admin = os.environ.get(DSN_ENV) or (server.dsn if server else "")
    s3 = SeaweedS3().start()
    name = f"bench_{uuid.uuid4().hex[:8]}"
    workdir = Path(tempfile.mkdtemp(prefix="bench-backup-"))
    try:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        dsn = admin.rsplit("/", 1)[0] + f"/{name}"
        generated = timed(lambda: populate(dsn, usage_rows=rows_for_megabytes(megabytes)))
        bench = Bench(dsn, s3, workdir)
        with psycopg.connect(dsn) as conn:
            row = conn.execute("SELECT pg_database_size(current_database())").fetchone()
        print(
            f"database: {row[0] / MB if row else 0:.0f} MB on disk "
            f"(asked {megabytes} MB, generated in {generated:.0f} s)"
        )
        pgbackrest = shutil.which("pgbackrest")
        if not pgbackrest:
            print("pgBackRest: not installed, skipped")

        floor, stock, naive, ours, ours_wall, rss = [], [], [], [], [], []
        result: dict[str, float] = {}

        def run_ours() -> None:
            nonlocal result
            seconds, wall, _, result = bench.ours()
            ours.append(seconds)
            ours_wall.append(wall)
            rss.append(result["maxrss"])

        backups: list[Callable[[], object]] = [
            lambda: floor.append(timed(lambda: bench.pg_dump_to("/dev/null", "-Z0"))),
            lambda: stock.append(timed(lambda: bench.pg_dump_to("/dev/null"))),
            lambda: naive.append(timed(bench.naive)),
            run_ours,
        ]
        # Interleaved, so all see the same machine load and caches, and rotated, so none always
        # runs just after another's uploads (the S3 server is still busy with them for a while).
        for round_ in range(ROUNDS):
            for step in backups[round_:] + backups[:round_]:
                step()
        _, _, peak, sampled = bench.ours(sample_memory=True)
        rss.append(sampled["maxrss"])

        archive = workdir / "floor.dump"
        bench.pg_dump_to(str(archive), "-Z0")
        restore_floor: list[float] = []
        restore_ours: list[float] = []
        restore_stream: list[float] = []
        restores: list[Callable[[], object]] = [
            lambda: restore_floor.append(bench.restore_floor(archive)),
            lambda: restore_ours.append(bench.restore_ours()),
            lambda: restore_stream.append(bench.restore_streamed()),
        ]
        for round_ in range(ROUNDS):
            for step in restores[round_:] + restores[:round_]:
                step()

        raw = result["raw"]
        med = statistics.median
        print(f"dump: {raw / MB:.0f} MB raw (pg_dump -Fc -Z0), {result['stored'] / MB:.0f} MB stored (zstd)")
        print(f"rounds: {ROUNDS} (median), {os.cpu_count()} CPUs")
        print(f"floor  pg_dump -Fc -Z0 > /dev/null:   {med(floor):7.2f} s  {raw / MB / med(floor):6.0f} MB/s")
        print(f"stock  pg_dump -Fc > /dev/null:       {med(stock):7.2f} s")
        print(f"naive  pg_dump -Fc to file + upload:  {med(naive):7.2f} s")
        print(
            f"ours   stream zstd+sha256 -> S3:      {med(ours):7.2f} s  {raw / MB / med(ours):6.0f} MB/s "
            f"(child wall incl. interpreter start {med(ours_wall):.2f} s)"
        )
        print(
            f"ours   peak memory of the process tree: {peak / 2**20:5.0f} MiB (PSS, python + pg_dump, "
            f"sampled in an extra run; the python process alone peaked at {max(rss) / 2**20:.0f} MiB RSS)"
        )
        print(f"restore floor pg_restore -j2 from a local file: {med(restore_floor):7.2f} s")
        print(f"restore ours  download+verify, pg_restore -j2:  {med(restore_ours):7.2f} s")
        print(f"restore alt.  streamed into pg_restore (1 job): {med(restore_stream):7.2f} s")
        print(f"backup / naive two-step: {med(ours) / med(naive):.2f}")
        print(f"restore / pg_restore floor: {med(restore_ours) / med(restore_floor):.2f}")
        print(f"backup / pg_dump floor: {med(ours) / med(floor):.2f}")
    finally:
        drop_database(admin, name)
        s3.stop()
        shutil.rmtree(workdir, ignore_errors=True)
        if server is not None:
            server.stop()


if __name__ == "__main__":
    main()
