"""The streamed backup pipeline without servers: framed encryption, zstd, checksums, part filling.

Cases:
- encryption round trip across chunk boundaries (empty, one byte, exact chunk multiples, odd sizes)
- reading without the key names the variable and the key fingerprint, never the key
- a wrong key, a flipped byte, a dropped final frame, reordered frames, trailing bytes: all refused
- a malformed key in the environment is refused without echoing it
- upload -> download through the local-directory store: both checksums match; corruption and
  truncation of the stored object are caught
- the local store never shows a partial file; abort leaves nothing
- the compressing thread: an upload failing there is raised by upload_stream (not lost, no hang),
  and a read failing mid-stream is raised as itself with the thread ended
- S3 part sizing: parts are filled to full size (not one per short read), grow every 1000 parts,
  a small object is a single PutObject, and a failed part aborts the multipart upload
"""

from __future__ import annotations

import base64
import io
import os
import struct
import threading
from typing import Any

import pytest

from llm_cost_ops_ops.storage.base import Upload
from llm_cost_ops_ops.storage.crypto import (
    KEY_ENV,
    EncryptingWriter,
    EncryptionKey,
    decrypt_chunks,
)
from llm_cost_ops_ops.storage.errors import (
    ChecksumMismatch,
    DecryptionFailed,
    EncryptionError,
    EncryptionKeyMissing,
    StorageError,
)
from llm_cost_ops_ops.storage.local import LocalDirectoryStore
from llm_cost_ops_ops.storage.s3 import S3Settings, S3Store
from llm_cost_ops_ops.storage.s3_upload import part_size
from llm_cost_ops_ops.storage.stream import Compression, download_stream, upload_stream, verify

pytestmark = pytest.mark.unit
KEY = EncryptionKey(bytes(range(32)))


def encrypt(data: bytes, key: EncryptionKey = KEY, chunk: int = 64) -> bytes:
    sink = io.BytesIO()
    writer = EncryptingWriter(sink, key, chunk_size=chunk)
    for start in range(0, len(data), 7):  # many short writes, as a pipe gives them
        writer.write(data[start : start + 7])
    writer.close()
    return sink.getvalue()


def decrypt(blob: bytes, key: EncryptionKey | None = KEY, chunk: int = 64) -> bytes:
    pieces = [blob[i : i + 5] for i in range(0, len(blob), 5)]
    return b"".join(decrypt_chunks(pieces, key, "s3://b/x.enc", chunk_size=chunk))


def frames(blob: bytes) -> tuple[bytes, list[bytes]]:
    header, rest, found = blob[:32], blob[32:], []
    while rest:
        length = struct.unpack(">I", rest[1:5])[0]
        found.append(rest[: 17 + length])
        rest = rest[17 + length :]
    return header, found


@pytest.mark.parametrize("size", [0, 1, 63, 64, 65, 128, 1000])
def test_encryption_round_trip(size: int) -> None:
    data = os.urandom(size)
    assert decrypt(encrypt(data)) == data


def test_reading_without_the_key_says_which_key() -> None:
    with pytest.raises(EncryptionKeyMissing) as caught:
        decrypt(encrypt(b"secret rows"), key=None)
    message = str(caught.value)
    assert KEY_ENV in message and KEY.fingerprint in message
    assert base64.b64encode(bytes(range(32))).decode() not in message


def test_wrong_key_is_refused() -> None:
    other = EncryptionKey(os.urandom(32))
    with pytest.raises(DecryptionFailed, match="not the configured key"):
        decrypt(encrypt(b"rows"), key=other)


_DAMAGE = {
    "flipped byte": lambda blob, header, parts: blob[:-1] + bytes([blob[-1] ^ 1]),
    "final frame dropped": lambda blob, header, parts: header + b"".join(parts[:-1]),
    "frames reordered": lambda blob, header, parts: header + parts[1] + parts[0] + b"".join(parts[2:]),
    "bytes after the end": lambda blob, header, parts: blob + parts[-1],
    "cut mid-frame": lambda blob, header, parts: blob[:-10],
}


@pytest.mark.parametrize("damage", sorted(_DAMAGE))
def test_tampering_and_truncation_are_detected(damage: str) -> None:
    blob = encrypt(os.urandom(300))
    header, parts = frames(blob)
    with pytest.raises(DecryptionFailed):
        decrypt(_DAMAGE[damage](blob, header, parts))


def test_malformed_key_in_environment_is_not_echoed() -> None:
    assert EncryptionKey.from_env(environ={}) is None
    with pytest.raises(EncryptionError) as caught:
        EncryptionKey.from_env(environ={KEY_ENV: "not-base64-secret!!"})
    assert "not-base64-secret" not in str(caught.value)
    short = base64.b64encode(b"x" * 16).decode()
    with pytest.raises(EncryptionError, match="16 bytes"):
        EncryptionKey.from_env(environ={KEY_ENV: short})
    assert "EncryptionKey(fingerprint=" in repr(EncryptionKey.from_base64(EncryptionKey.generate()))


@pytest.mark.parametrize("encrypted", [False, True])
def test_upload_download_through_local_store(tmp_path: Any, encrypted: bool) -> None:
    store = LocalDirectoryStore(tmp_path / "store")
    store.check()
    key = KEY if encrypted else None
    data = os.urandom(300_000) + b"usage_records " * 200_000
    source = io.BytesIO(data)
    with store.open_upload("dev/x.dump.zst") as upload:
        stats = upload_stream(source.read, upload, compression=Compression(level=1, threads=1), key=key)
        upload.commit()
    assert stats.raw_bytes == len(data) and stats.stored_bytes < len(data)
    stored = store.get_bytes("dev/x.dump.zst")
    assert (b"usage_records" in stored) is False or not encrypted
    out = io.BytesIO()
    back = download_stream(store.iter_bytes("dev/x.dump.zst"), out, key=key, what="x")
    assert out.getvalue() == data
    verify(back, sha256_stored=stats.sha256_stored, sha256_raw=stats.sha256_raw, what="x")

    path = tmp_path / "store" / "dev" / "x.dump.zst"
    path.write_bytes(stored[: len(stored) // 2])
    with pytest.raises((ChecksumMismatch, DecryptionFailed)):
        download_stream(store.iter_bytes("dev/x.dump.zst"), io.BytesIO(), key=key, what="x")


class _FailingUpload(Upload):
    def __init__(self, after: int):
        super().__init__("k")
        self.after = after

    def write(self, data: bytes | bytearray | memoryview) -> int:
        self.bytes_written += len(data)
        if self.bytes_written > self.after:
            raise StorageError("upload part 3 of k: gone")
        return len(data)

    def commit(self) -> None:
        raise AssertionError("never committed")

    def abort(self) -> None:
        pass


def _threads() -> set[str]:
    return {t.name for t in threading.enumerate()}


def test_failures_on_either_side_of_the_compressing_thread_are_raised() -> None:
    before = _threads()
    incompressible = io.BytesIO(os.urandom(8 * 1024 * 1024))
    with pytest.raises(StorageError, match="upload part 3"):
        upload_stream(incompressible.read, _FailingUpload(after=3 * 1024 * 1024))

    source = io.BytesIO(os.urandom(4 * 1024 * 1024))

    def broken(size: int) -> bytes:
        chunk = source.read(size)
        if not chunk:
            raise OSError("pipe closed")
        return chunk

    with pytest.raises(OSError, match="pipe closed"):
        upload_stream(broken, _FailingUpload(after=1 << 40))
    assert _threads() <= before


def test_local_store_shows_no_partial_file(tmp_path: Any) -> None:
    store = LocalDirectoryStore(tmp_path)
    upload = store.open_upload("dev/a.dump.zst")
    upload.write(b"half")
    assert list(store.list_objects("dev/")) == []
    assert [p.key for p in store.pending_uploads("dev/")] == ["dev/a.dump.zst"]
    upload.abort()
    assert store.pending_uploads("dev/") == [] and list(store.list_objects("")) == []
    with pytest.raises(StorageError):
        store.open_upload("../escape")


def test_part_sizes_grow_so_any_object_fits() -> None:
    mib = 1 << 20
    assert part_size(1, 8 * mib, 128 * mib) == 8 * mib
    assert part_size(1001, 8 * mib, 128 * mib) == 16 * mib
    assert part_size(9999, 8 * mib, 128 * mib) == 128 * mib
    total = sum(part_size(n, 8 * mib, 128 * mib) for n in range(1, 10_001))
    assert total > 800 * 1024 * mib


class _RecordingS3:
    """Just enough of a boto3 client to watch the part sizes an upload sends."""

    def __init__(self, fail_part: int = 0):
        self.parts: list[int] = []
        self.calls: list[str] = []
        self.fail_part = fail_part

    def create_multipart_upload(self, **kw: Any) -> dict[str, Any]:
        self.calls.append("create")
        return {"UploadId": "u1"}

    def upload_part(self, **kw: Any) -> dict[str, Any]:
        if kw["PartNumber"] == self.fail_part:
            raise ConnectionResetError("gone")
        self.parts.append(len(kw["Body"]))
        return {"ETag": f'"{kw["PartNumber"]}"'}

    def complete_multipart_upload(self, **kw: Any) -> None:
        self.calls.append(f"complete {[p['PartNumber'] for p in kw['MultipartUpload']['Parts']]}")

    def abort_multipart_upload(self, **kw: Any) -> None:
        self.calls.append("abort")

    def put_object(self, **kw: Any) -> None:
        self.calls.append(f"put {len(kw['Body'])}")


def test_parts_are_filled_to_full_size() -> None:
    client = _RecordingS3()
    store = S3Store(S3Settings(bucket="b", part_size=5 * 1024 * 1024), client=client)
    with store.open_upload("k") as upload:
        for _ in range(12 * 1024):  # 12 MiB in 1 KiB writes: a pipe's short reads
            upload.write(b"x" * 1024)
        upload.commit()
    assert client.parts == [5 * 1024 * 1024, 5 * 1024 * 1024, 2 * 1024 * 1024]
    assert client.calls == ["create", "complete [1, 2, 3]"]

    small = _RecordingS3()
    S3Store(S3Settings(bucket="b"), client=small).put_bytes("m", b"{}")
    assert small.calls == ["put 2"]


def test_failed_part_aborts_the_upload() -> None:
    client = _RecordingS3(fail_part=2)
    store = S3Store(S3Settings(bucket="b", part_size=5 * 1024 * 1024, parts_in_flight=1), client=client)
    with pytest.raises(StorageError, match="upload part 2"), store.open_upload("k") as upload:
        for _ in range(30):
            upload.write(b"y" * 1024 * 1024)
        upload.commit()
    assert client.calls[-1] == "abort" and not any(c.startswith("complete") for c in client.calls)
