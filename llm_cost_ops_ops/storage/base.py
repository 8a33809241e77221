"""The object-store interface backups are written through: streamed uploads, reads, listings.

An upload becomes visible only when committed; until then (and after abort) readers see nothing
under its key. Keys are relative to the store's prefix, with `/` separators.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType


@dataclass(frozen=True)
class StoredObject:
    key: str
    size: int
    modified: datetime


@dataclass(frozen=True)
class PendingUpload:
    """An upload started and never committed nor aborted (an S3 multipart upload, a temp file)."""

    key: str
    upload_id: str
    started: datetime


class Upload(abc.ABC):
    """A streamed upload to one key: write any amount, then commit (visible) or abort (gone).

    Used as a context manager it aborts when the block raises or leaves without committing.
    """

    def __init__(self, key: str):
        self.key = key
        self.bytes_written = 0
        self.committed = False

    @abc.abstractmethod
    def write(self, data: bytes | bytearray | memoryview) -> int:
        """Buffer or send `data`. Raises StorageError when the store refused an earlier part."""

    @abc.abstractmethod
    def commit(self) -> None:
        """Make the object visible under its key. Raises StorageError; the upload is then aborted."""

    @abc.abstractmethod
    def abort(self) -> None:
        """Discard everything written; never raises (a leftover is cleaned by retention)."""

    def __enter__(self) -> Upload:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if not self.committed:
            self.abort()


class ObjectStore(abc.ABC):
    """Where backups live. Implementations: S3Store (any S3 API), LocalDirectoryStore."""

    @property
    @abc.abstractmethod
    def location(self) -> str:
        """The store's root as a URL (`s3://bucket/prefix`, `file:///dir`), for messages."""

    def url(self, key: str) -> str:
        return f"{self.location.rstrip('/')}/{key}"

    @abc.abstractmethod
    def check(self) -> None:
        """Fail fast before any work: reachable, credentials accepted, bucket present (or created
        when so configured). Raises StorageUnavailable, StorageAccessDenied or BucketMissing."""

    @abc.abstractmethod
    def open_upload(self, key: str) -> Upload:
        """Start a streamed upload of `key`."""

    def put_bytes(self, key: str, data: bytes) -> None:
        """Write a small object in one go (visible all at once)."""
        with self.open_upload(key) as upload:
            upload.write(data)
            upload.commit()

    @abc.abstractmethod
    def iter_bytes(self, key: str, chunk_size: int = 1 << 20) -> Iterator[bytes]:
        """Stream an object's bytes. Raises ObjectMissing, StorageUnavailable."""

    def get_bytes(self, key: str) -> bytes:
        return b"".join(self.iter_bytes(key))

    @abc.abstractmethod
    def list_objects(self, prefix: str) -> Iterator[StoredObject]:
        """Committed objects whose key starts with `prefix`, in no particular order."""

    @abc.abstractmethod
    def delete(self, key: str) -> None:
        """Delete one object; deleting an absent key is not an error."""

    @abc.abstractmethod
    def pending_uploads(self, prefix: str) -> list[PendingUpload]:
        """Uploads under `prefix` that were started and never finished."""

    @abc.abstractmethod
    def abort_pending(self, pending: PendingUpload) -> None:
        """Discard a pending upload found by `pending_uploads`."""
