"""Backup and restore of a platform-shaped database, ours beside pgBackRest, against one local S3.

One throwaway PostgreSQL (archiving to pgBackRest) and one SeaweedFS S3 server (HTTP for ours,
HTTPS with a self-signed certificate for pgBackRest, which speaks only HTTPS) serve every
contestant. Every contestant is called from this process and timed the same way, the wall time of
the call (external programs as child processes through tests/processes.py `run_process`, ours as a
function call, as a Dagster step makes it), interleaved and rotated over ROUNDS rounds, medians
reported. Backups:
- the floor: `pg_dump -Fc -Z0 > /dev/null` (reading the database, no compression, no upload)
- stock `pg_dump -Fc > /dev/null` (its built-in zlib)
- the naive two-step: `pg_dump -Fc` to a file, then boto3 `upload_file`
- pgBackRest (Debian's; installed with apt-get when absent and running as root): `backup
  --type=full` of the cluster into an S3 repository on the same server, zstd level 1 like ours,
  `process-max` = the CPU count, `start-fast`
- ours: `run_backup` (pg_dump -Fc -Z0 -> zstd 1 -> sha256 -> multipart upload)
- ours again as a fresh Python process (interpreter start and imports included), whose process
  tree's peak memory is measured: each process's VmHWM read from /proc every 50 ms, summed
Restores: the floor `pg_restore -j2` from a local file into a new database; ours, `restore_backup`
(download, both checksums verified, `pg_restore -j2`); pgBackRest's `restore` into a new data
directory plus starting PostgreSQL on it until it is out of recovery.

BENCH_BACKUP_MB sets the database size (default 256, which finishes in under four minutes on two
CPUs; 1024 for the figures the README quotes). The server is always a throwaway one: pgBackRest
needs its data directory and archive_command. A contestant that cannot run is named with the
reason, and the benchmark exits non-zero without a headline. The headline figure is the last line.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import psycopg
from psycopg import sql

from benchmarks.contestants import missing, require
from llm_cost_ops_ops.postgres.backup import run_backup
from llm_cost_ops_ops.postgres.restore import drop_database, restore_backup
from llm_cost_ops_ops.postgres.tools import find_pg_tool, libpq_target, server_major
from llm_cost_ops_ops.storage.catalog import read_catalog
from llm_cost_ops_ops.storage.s3 import S3Settings, S3Store
from llm_cost_ops_ops.storage.stream import DEFAULT_COMPRESSION
from tests import processes
from tests.platform_data import populate, rows_for_megabytes
from tests.postgres_server import ThrowawayPostgres
from tests.s3_server import SeaweedS3

ROUNDS = 3
MB = 1e6
STANZA = "bench"
TARGETS = {"floor": 1.3, "memory_mb": 150, "restore": 1.15}
BACKUP_CHILD = """
import json, os, sys
from benchmarks.contestants import missing, require
from llm_cost_ops_ops.postgres.backup import run_backup
from llm_cost_ops_ops.storage.s3 import S3Settings, S3Store
args = json.loads(sys.argv[1])
result = run_backup(S3Store(S3Settings(**args["s3"])), os.environ["BENCH_DSN"], env="bench",
                    run_id=args["run"])
print(json.dumps({"seconds": result.duration_seconds, "raw": result.manifest.dump.raw_bytes,
                  "stored": result.manifest.stored_bytes}))
"""


class TreeMemory:
    """Peak resident memory of a process tree: each process's VmHWM (its high-water mark since its
    exec, so the copy of the parent it held between fork and exec does not count, as it does in
    ru_maxrss), read from /proc every 50 ms while the tree runs; the sum bounds the tree's peak."""

    def __init__(self) -> None:
        self.peaks: dict[int, tuple[str, int]] = {}
        self._done = threading.Event()
        self._thread: threading.Thread | None = None

    def watch(self, pid: int) -> None:
        self._thread = threading.Thread(target=self._sample, args=(pid,), daemon=True)
        self._thread.start()

    def _sample(self, root: int) -> None:
        while not self._done.is_set():
            stack = [root]
            while stack:
                pid = stack.pop()
                try:
                    fields = dict(
                        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                    )
                    if "VmHWM" in fields:
                        self.peaks[pid] = (fields["Name"].strip(), int(fields["VmHWM"].split()[0]) * 1024)
                    for task in Path(f"/proc/{pid}/task").iterdir():
                        stack += [int(c) for c in (task / "children").read_text().split()]
                except (FileNotFoundError, ProcessLookupError, ValueError):
                    continue
            self._done.wait(0.05)

    def stop(self) -> dict[str, int]:
        """Peak bytes by process name (summed over processes of one name)."""
        self._done.set()
        if self._thread is not None:
            self._thread.join()
        by_name: dict[str, int] = {}
        for name, peak in self.peaks.values():
            by_name[name] = by_name.get(name, 0) + peak
        return by_name


def measured(
    run: Callable[[Callable[[int], object]], processes.Finished],
) -> tuple[processes.Finished, dict[str, int]]:
    memory = TreeMemory()
    try:
        finished = run(memory.watch)
    finally:
        peaks = memory.stop()
    return finished, peaks


def ensure_pgbackrest() -> tuple[str | None, str]:
    """(path, "") of pgBackRest, installing Debian's package when absent and root; else (None, why)."""
    found = shutil.which("pgbackrest")
    if found:
        return found, ""
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return None, "not installed, and installing it needs root and apt-get (apt-get install pgbackrest)"
    print("pgBackRest: not installed; apt-get install -y --no-install-recommends pgbackrest", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "pgbackrest"]
    if subprocess.run(install, env=env, stdout=subprocess.DEVNULL).returncode != 0:
        subprocess.run(["apt-get", "update", "-qq"], env=env, check=False)
        subprocess.run(install, env=env, stdout=subprocess.DEVNULL, check=False)
    found = shutil.which("pgbackrest")
    return (found, "") if found else (None, "apt-get install pgbackrest failed")


def check(finished: processes.Finished, what: str) -> processes.Finished:
    if finished.returncode != 0:
        sys.exit(f"{what} failed with status {finished.returncode}")
    return finished


class PgBackRest:
    """A pgBackRest stanza for `server`, its repository in a bucket of `s3` (over HTTPS)."""

    def __init__(self, binary: str, home: Path, user: str | None):
        self.binary, self.home, self.user = binary, home, user
        self.config = home / "pgbackrest.conf"
        self.process_max = os.cpu_count() or 1

    @property
    def archive_command(self) -> str:
        return f"{self.binary} --config={self.config} --stanza={STANZA} archive-push %p"

    def configure(self, server: ThrowawayPostgres, s3: SeaweedS3, bucket: str) -> None:
        assert s3.ca_file is not None
        ca = self.home / "s3-ca.crt"
        shutil.copy(s3.ca_file, ca)
        level = DEFAULT_COMPRESSION.level
        options = {
            "repo1-type": "s3", "repo1-path": "/pgbackrest", "repo1-s3-bucket": bucket,
            "repo1-s3-endpoint": "127.0.0.1", "repo1-storage-port": str(s3.https_port),
            "repo1-s3-region": "us-east-1", "repo1-s3-uri-style": "path",
            "repo1-s3-key": s3.access_key, "repo1-s3-key-secret": s3.secret_key,
            "repo1-storage-ca-file": str(ca), "repo1-retention-full": "99",
            "compress-type": "zst", "compress-level": str(level), "process-max": str(self.process_max),
            "start-fast": "y", "log-path": str(self.home), "lock-path": str(self.home),
            "log-level-console": "warn", "log-level-file": "off",
        }  # fmt: skip
        stanza = {
            "pg1-path": str(server.data),
            "pg1-port": str(server.port),
            "pg1-socket-path": str(server.socket_dir),
        }
        text = "[global]\n" + "".join(f"{k}={v}\n" for k, v in options.items())
        text += f"[{STANZA}]\n" + "".join(f"{k}={v}\n" for k, v in stanza.items())
        self.config.write_text(text)
        self.config.chmod(0o600)
        if self.user:
            for path in (self.home, self.config, ca):
                shutil.chown(path, self.user, self.user)

    def run(self, *args: str, on_start: Callable[[int], object] | None = None) -> processes.Finished:
        command = [self.binary, f"--config={self.config}", f"--stanza={STANZA}", *args]
        finished = processes.run_process(command, user=self.user, on_start=on_start)
        return check(finished, f"pgbackrest {args[0]}")

    def restore_and_start(self) -> float:
        """Seconds to restore the newest backup into a new data directory and start PostgreSQL on
        it until it is out of recovery (the physical counterpart of a logical restore)."""
        target = ThrowawayPostgres()
        target.data.mkdir(mode=0o700)
        if self.user:
            shutil.chown(target.data, self.user, self.user)
        try:
            restore = self.run(
                "restore", f"--pg1-path={target.data}", "--type=immediate", "--target-action=promote",
                "--archive-mode=off",
            )  # fmt: skip
            started = time.perf_counter()
            target.launch()
            with psycopg.connect(target.dsn) as conn:
                while conn.execute("SELECT pg_is_in_recovery()").fetchone() == (True,):
                    time.sleep(0.05)
            return restore.seconds + time.perf_counter() - started
        finally:
            target.stop()


class Bench:
    def __init__(self, dsn: str, s3: SeaweedS3, workdir: Path):
        self.dsn, self.s3, self.workdir = dsn, s3, workdir
        with psycopg.connect(dsn) as conn:
            major = server_major(conn.info.server_version)
        self.pg_dump = str(require("pg_dump (the floor)", lambda: find_pg_tool("pg_dump", major).path))
        self.pg_restore = str(require("pg_restore -j2", lambda: find_pg_tool("pg_restore", major).path))
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

    def pg_dump_null(self, *options: str) -> float:
        with open(os.devnull, "wb") as sink:
            args = [self.pg_dump, "-Fc", *options, f"--dbname={self.target}"]
            return check(processes.run_process(args, env=self.env, stdout=sink), "pg_dump").seconds

    def python(
        self, script: str, args: dict[str, object], what: str, on_start: Callable[[int], object] | None = None
    ) -> processes.Finished:
        command = [sys.executable, "-c", script, json.dumps(args)]
        return check(processes.run_process(command, env=self.child_env, on_start=on_start), what)

    def naive(self) -> float:
        started = time.perf_counter()
        path = self.workdir / "naive.dump"
        with open(path, "wb") as sink:
            args = [self.pg_dump, "-Fc", f"--dbname={self.target}"]
            check(processes.run_process(args, env=self.env, stdout=sink), "pg_dump")
        self.s3.client().upload_file(str(path), self.bucket, f"naive/{uuid.uuid4().hex}.dump")
        path.unlink()
        return time.perf_counter() - started

    def ours_here(self) -> tuple[float, float]:
        """(seconds, seconds inside run_backup) of our backup called in this process."""
        started = time.perf_counter()
        result = run_backup(self.store, self.dsn, env="bench", run_id=uuid.uuid4().hex[:8])
        return time.perf_counter() - started, result.duration_seconds

    def ours_process(self) -> tuple[float, dict[str, float], dict[str, int]]:
        """(wall seconds, the child's result, peak bytes by process name)."""
        args: dict[str, object] = {"s3": self.settings, "run": uuid.uuid4().hex[:8]}
        finished, peaks = measured(lambda watch: self.python(BACKUP_CHILD, args, "our backup", watch))
        return finished.seconds, json.loads(finished.stdout), peaks

    def _new_database(self, prefix: str) -> str:
        name = f"{prefix}_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(name)))
        return name

    def restore_floor(self, archive: Path) -> float:
        name = self._new_database("floor")  # ours creates its database inside its timed process
        try:
            target, env = libpq_target(self.dsn, name)
            args = [self.pg_restore, "-j2", f"--dbname={target}", str(archive)]
            return check(processes.run_process(args, env=env), "pg_restore").seconds
        finally:
            drop_database(self.dsn, name)

    def restore_ours(self) -> float:
        name = f"ours_{uuid.uuid4().hex[:8]}"
        newest = read_catalog(self.store, "bench").entries[-1].backup_id  # named: no drill needed
        try:
            started = time.perf_counter()
            restore_backup(self.store, self.dsn, env="bench", backup_id=newest, target_database=name,
                           workdir=self.workdir)  # fmt: skip
            return time.perf_counter() - started
        finally:
            drop_database(self.dsn, name)


def interleaved(steps: list[Callable[[], object]]) -> None:
    """Each step once per round, rotated, so all see the same load and none always runs just after
    another's uploads (the S3 server is still busy with them for a while)."""
    for round_ in range(ROUNDS):
        for step in steps[round_:] + steps[:round_]:
            step()


def database_mb(dsn: str, query: str) -> float:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(query).fetchone()
    return float(row[0]) / MB if row else 0.0


def main() -> None:
    megabytes = int(os.environ.get("BENCH_BACKUP_MB", "256"))
    pgbackrest, why = ensure_pgbackrest()
    if pgbackrest is None:
        missing("pgBackRest", why)
    user = "postgres" if os.geteuid() == 0 else None
    home = processes.owned_tempdir("bench-backup-pgbackrest-")
    workdir = processes.owned_tempdir("bench-backup-")
    rest = PgBackRest(pgbackrest, home, user)
    s3 = SeaweedS3(tls=True).start()
    server = ThrowawayPostgres({"archive_mode": "on", "archive_command": rest.archive_command})
    try:
        rest.configure(server, s3, s3.new_bucket())
        server.start()
        rest.run("stanza-create")
        name = f"bench_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(server.dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        dsn = server.dsn.rsplit("/", 1)[0] + f"/{name}"
        started = time.perf_counter()
        populate(dsn, usage_rows=rows_for_megabytes(megabytes))
        generated = time.perf_counter() - started
        bench = Bench(dsn, s3, workdir)
        size = database_mb(dsn, "SELECT pg_database_size(current_database())")
        cluster = database_mb(dsn, "SELECT sum(pg_database_size(datname)) FROM pg_database")
        print(
            f"database: {size:.0f} MB on disk (asked {megabytes} MB, generated in {generated:.0f} s); "
            f"cluster {cluster:.0f} MB"
        )

        floor, stock, naive, ours, inside, ours_process, theirs = [], [], [], [], [], [], []
        result: dict[str, float] = {}
        our_peaks: list[dict[str, int]] = []
        their_peaks: list[dict[str, int]] = []

        def run_ours() -> None:
            seconds, within = bench.ours_here()
            ours.append(seconds)
            inside.append(within)

        def run_ours_process() -> None:
            nonlocal result
            seconds, result, peaks = bench.ours_process()
            ours_process.append(seconds)
            our_peaks.append(peaks)

        def run_pgbackrest() -> None:
            finished, peaks = measured(lambda watch: rest.run("backup", "--type=full", on_start=watch))
            theirs.append(finished.seconds)
            their_peaks.append(peaks)

        interleaved([
            lambda: floor.append(bench.pg_dump_null("-Z0")),
            lambda: stock.append(bench.pg_dump_null()),
            lambda: naive.append(bench.naive()),
            run_pgbackrest,
            run_ours,
            run_ours_process,
        ])  # fmt: skip

        archive = workdir / "floor.dump"
        with open(archive, "wb") as sink:
            check(processes.run_process([bench.pg_dump, "-Fc", "-Z0", f"--dbname={bench.target}"],
                                        env=bench.env, stdout=sink), "pg_dump")  # fmt: skip
        restore_floor: list[float] = []
        restore_ours: list[float] = []
        restore_theirs: list[float] = []
        interleaved([
            lambda: restore_floor.append(bench.restore_floor(archive)),
            lambda: restore_ours.append(bench.restore_ours()),
            lambda: restore_theirs.append(rest.restore_and_start()),
        ])  # fmt: skip
        info = json.loads(rest.run("info", "--output=json").stdout)
        newest = info[0]["backup"][-1]["info"]

        raw, med = result["raw"], statistics.median
        peak = max(sum(p.values()) for p in our_peaks)
        peak_parts = max(our_peaks, key=lambda p: sum(p.values()))
        their_peak = max(sum(p.values()) for p in their_peaks)
        print(f"dump: {raw / MB:.0f} MB raw (pg_dump -Fc -Z0), {result['stored'] / MB:.0f} MB stored (zstd)")
        print(
            f"pgBackRest full backup: {newest['size'] / MB:.0f} MB of cluster files, "
            f"{newest['repository']['delta'] / MB:.0f} MB in its repository (zstd {DEFAULT_COMPRESSION.level}, "
            f"process-max {rest.process_max})"
        )
        print(
            f"rounds: {ROUNDS} (median), {os.cpu_count()} CPUs; each figure is the wall time of one call from "
            "this process (pg_dump, pg_restore and pgBackRest as child processes, ours as a function call)"
        )
        print(f"floor  pg_dump -Fc -Z0 > /dev/null:   {med(floor):7.2f} s  {raw / MB / med(floor):6.0f} MB/s")
        print(f"stock  pg_dump -Fc > /dev/null:       {med(stock):7.2f} s")
        print(f"naive  pg_dump -Fc to file + upload:  {med(naive):7.2f} s")
        print(f"pgBackRest backup --type=full -> S3:  {med(theirs):7.2f} s  (peak {their_peak / MB:.0f} MB)")
        print(
            f"ours   stream zstd+sha256 -> S3:      {med(ours):7.2f} s  {raw / MB / med(ours):6.0f} MB/s "
            f"(inside run_backup {med(inside):.2f} s)"
        )
        print(
            f"ours   as a fresh Python process:     {med(ours_process):7.2f} s  (interpreter start and "
            f"imports included; / floor {med(ours_process) / med(floor):.2f})"
        )
        parts = " + ".join(f"{name} {size / MB:.0f}" for name, size in sorted(peak_parts.items()))
        print(
            f"ours   peak memory: {peak / MB:.0f} MB ({parts}; the sum of each process's VmHWM, "
            "sampled from /proc every 50 ms in every round, the largest round)"
        )
        print(f"restore floor pg_restore -j2 from a local file:   {med(restore_floor):7.2f} s")
        print(f"restore ours  download+verify, pg_restore -j2:    {med(restore_ours):7.2f} s")
        print(f"restore pgBackRest restore + start to promoted:   {med(restore_theirs):7.2f} s")
        ratio, restore_ratio = med(ours) / med(floor), med(restore_ours) / med(restore_floor)
        misses = []
        if ratio > TARGETS["floor"]:
            misses.append(f"backup {ratio:.2f}x the floor (target <= {TARGETS['floor']})")
        if med(ours) >= med(theirs):
            misses.append(f"backup not faster than pgBackRest ({med(ours):.2f} s vs {med(theirs):.2f} s)")
        if peak >= TARGETS["memory_mb"] * MB:
            misses.append(f"peak memory {peak / MB:.0f} MB (target < {TARGETS['memory_mb']} MB)")
        if restore_ratio > TARGETS["restore"]:
            misses.append(f"restore {restore_ratio:.2f}x pg_restore -j2 (target <= {TARGETS['restore']})")
        print("targets: " + ("all met" if not misses else "MISSED: " + "; ".join(misses)))
        print(f"backup / pgBackRest: {med(ours) / med(theirs):.2f}")
        print(f"backup / naive two-step: {med(ours) / med(naive):.2f}")
        print(f"restore / pg_restore floor: {restore_ratio:.2f}")
        print(f"backup / pg_dump floor: {ratio:.2f}")
    finally:
        server.stop()
        s3.stop()
        processes.remove_tempdir(workdir)
        processes.remove_tempdir(home)


if __name__ == "__main__":
    main()
