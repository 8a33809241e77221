"""The streamed pipelines between a dump and a stored object, in both directions.

Up: raw bytes -> sha256 (raw) -> (second thread) zstd -> [AES-256-GCM frames] -> sha256 (stored)
-> upload.
Down: stored bytes -> sha256 (stored) -> [decrypt] -> zstd -> (second thread) sha256 (raw) ->
a writer. Nothing is held whole: memory is a few chunks plus the compressor's window, whatever the size.
"""

from __future__ import annotations

import contextlib
import hashlib
import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import IO, cast

import zstandard

from .base import Upload
from .crypto import EncryptingWriter, EncryptionKey, Writable, decrypt_chunks, is_encrypted
from .errors import ChecksumMismatch

READ_SIZE = 1 << 20
# The compression runs on a thread of its own beside the one that reads the dump and hashes it
# (a 236 MB dump through the pipeline: 0.47 s against 0.70 s on one thread). zstd's own worker
# threads did that too, but keep a pool of job buffers: 14 MB more peak memory for a 202 MB dump
# at level 1, and no faster (make bench-backup). More workers are for a machine with cores to spare.
DEFAULT_THREADS = 0
_HANDOFF_DEPTH = 2  # chunks queued between the two threads
WRITE_SIZE = 1 << 20
_SLICE = 256 * 1024


@dataclass(frozen=True)
class StreamStats:
    raw_bytes: int
    stored_bytes: int
    sha256_raw: str
    sha256_stored: str


@dataclass(frozen=True)
class Compression:
    # Level 1: on dumps of the usage and cost ledgers it is about twice as fast as level 3 and
    # compresses as well or better (3.6x against 3.4x), and speed is what keeps a backup near
    # the pg_dump floor (make bench-backup).
    level: int = 1
    threads: int = DEFAULT_THREADS  # zstd's own workers, besides the compressing thread

    def describe(self) -> dict[str, object]:
        return {"algorithm": "zstd", "level": self.level, "threads": self.threads}


DEFAULT_COMPRESSION = Compression()


class _Counted:
    """Hash and count what passes through to `sink`."""

    def __init__(self, sink: Writable):
        self.sink, self.size, self.hash = sink, 0, hashlib.sha256()

    def write(self, data: bytes | bytearray | memoryview) -> int:
        self.hash.update(data)
        self.size += len(data)
        self.sink.write(data)
        return len(data)


def upload_stream(
    read: Callable[[int], bytes],
    upload: Upload,
    *,
    compression: Compression = DEFAULT_COMPRESSION,
    key: EncryptionKey | None = None,
    read_size: int = READ_SIZE,
) -> StreamStats:
    """Compress (and encrypt) everything `read` returns until b"" into `upload`, without
    committing it. Raises whatever `read` or the upload raise; the caller aborts the upload."""
    stored = _Counted(upload)
    encryptor = EncryptingWriter(stored, key) if key is not None else None
    compressor = zstandard.ZstdCompressor(level=compression.level, threads=compression.threads)
    writer = compressor.stream_writer(cast(IO[bytes], encryptor or stored), closefd=False)
    raw_hash, raw_size = hashlib.sha256(), 0
    compressing = _Handoff(writer, "compress", _HANDOFF_DEPTH)
    try:
        while chunk := read(read_size):
            raw_hash.update(chunk)
            raw_size += len(chunk)
            compressing.write(chunk)
    except BaseException:
        compressing.stop()
        raise
    compressing.close()
    writer.flush(zstandard.FLUSH_FRAME)
    if encryptor is not None:
        encryptor.close()
    return StreamStats(raw_size, stored.size, raw_hash.hexdigest(), stored.hash.hexdigest())


def _peek(chunks: Iterable[bytes]) -> tuple[bytes, Iterator[bytes]]:
    iterator = iter(chunks)
    first = next(iterator, b"")

    def rest() -> Iterator[bytes]:
        if first:
            yield first
        yield from iterator

    return first, rest()


class _Handoff:
    """Write to `sink` on a second thread. Compressing, decompressing and hashing all release the
    GIL, so the two halves of a pipeline overlap instead of taking turns."""

    def __init__(self, sink: Writable, name: str, depth: int = 4):
        self._sink = sink
        self._queue: queue.Queue[bytes | None] = queue.Queue(depth)
        self._error: BaseException | None = None
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            if self._error is None and not self._stopped:
                try:
                    self._sink.write(item)
                except BaseException as exc:
                    self._error = exc

    def write(self, data: bytes) -> int:
        """Raises what an earlier write on the thread raised."""
        if self._error is not None:
            raise self._error
        self._queue.put(data)
        return len(data)

    def close(self) -> None:
        """Wait for everything queued to be written; raises what writing raised."""
        self._queue.put(None)
        self._thread.join()
        if self._error is not None:
            raise self._error

    def stop(self) -> None:
        """Drop what is still queued and end the thread (the pipeline failed elsewhere)."""
        self._stopped = True
        self._queue.put(None)
        self._thread.join()


def _prefetched(chunks: Iterable[bytes], depth: int = 4) -> Iterator[bytes]:
    """Iterate `chunks` on a second thread, so the network read overlaps the decompression."""
    items: queue.Queue[tuple[bytes | None, BaseException | None]] = queue.Queue(depth)
    stop = threading.Event()

    def pump() -> None:
        try:
            for chunk in chunks:
                if stop.is_set():
                    return
                items.put((chunk, None))
            items.put((None, None))
        except BaseException as exc:
            items.put((None, exc))

    thread = threading.Thread(target=pump, name="restore-reader", daemon=True)
    thread.start()
    try:
        while True:
            chunk, error = items.get()
            if error is not None:
                raise error
            if chunk is None:
                return
            yield chunk
    finally:
        stop.set()
        while thread.is_alive():  # unblock a reader waiting on a full queue
            with contextlib.suppress(queue.Empty):
                items.get(timeout=0.1)


def download_stream(
    chunks: Iterable[bytes], out: Writable, *, key: EncryptionKey | None, what: str
) -> StreamStats:
    """Decrypt (when the object is encrypted) and decompress stored bytes into `out`.

    Raises EncryptionKeyMissing / DecryptionFailed, or ChecksumMismatch when the zstd stream is
    corrupt or cut short, and what writing to `out` raises. Checksums are returned, not
    compared: see `verify`.
    """
    stored_hash, stored_size = hashlib.sha256(), 0

    def counted() -> Iterator[bytes]:
        nonlocal stored_size
        for chunk in _prefetched(chunks):
            stored_hash.update(chunk)
            stored_size += len(chunk)
            yield chunk

    head, stream = _peek(counted())
    plain = decrypt_chunks(stream, key, what) if is_encrypted(head) else stream
    raw = _Counted(out)
    writer = _Handoff(raw, "restore-writer")
    # write_size: the decompressor's default output step (128 KiB) makes it copy its output
    # over and over; 1 MiB is 5x faster.
    decompressor = zstandard.ZstdDecompressor().decompressobj(write_size=WRITE_SIZE)
    try:
        for chunk in plain:
            view = memoryview(chunk)
            # Slices bound the output of one call, however well the data compressed.
            for start in range(0, len(view), _SLICE):
                writer.write(decompressor.decompress(view[start : start + _SLICE]))
    except zstandard.ZstdError as exc:
        raise ChecksumMismatch(f"{what}: the compressed stream is corrupt ({exc})") from None
    finally:
        writer.close()
    if not decompressor.eof:
        raise ChecksumMismatch(f"{what} is truncated: the compressed stream does not end")
    return StreamStats(raw.size, stored_size, raw.hash.hexdigest(), stored_hash.hexdigest())


def verify(stats: StreamStats, *, sha256_stored: str, sha256_raw: str, what: str) -> None:
    """Raises ChecksumMismatch naming which checksum differs."""
    if stats.sha256_stored != sha256_stored:
        raise ChecksumMismatch(
            f"{what}: stored bytes have sha256 {stats.sha256_stored}, the manifest records {sha256_stored}"
        )
    if stats.sha256_raw != sha256_raw:
        raise ChecksumMismatch(
            f"{what}: the restored dump has sha256 {stats.sha256_raw}, the manifest records {sha256_raw}"
        )
