"""A local-directory object store: the embedded default, and the second backend the tests run.

An upload writes `<key>.partial-<id>` beside its final name and renames it on commit (same
directory, so the rename is atomic): a reader never sees half a file. Leftover partial files are
this store's pending uploads.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from .base import ObjectStore, PendingUpload, StoredObject, Upload
from .errors import BucketMissing, ObjectMissing, StorageError

PARTIAL = ".partial-"


def _mtime(path: Path) -> datetime:
    return datetime.fromtimestamp(path.stat().st_mtime, UTC)


class _LocalUpload(Upload):
    def __init__(self, key: str, final: Path):
        super().__init__(key)
        self._final = final
        self._tmp = final.with_name(f"{final.name}{PARTIAL}{uuid.uuid4().hex[:12]}")
        final.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self._tmp, "wb")  # noqa: SIM115 - closed by commit or abort

    def write(self, data: bytes | bytearray | memoryview) -> int:
        written = self._file.write(data)
        self.bytes_written += written
        return written

    def commit(self) -> None:
        try:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            os.replace(self._tmp, self._final)
        except OSError as exc:
            self.abort()
            raise StorageError(f"cannot write {self._final}: {exc.strerror or exc}") from exc
        self.committed = True

    def abort(self) -> None:
        self._file.close()
        self._tmp.unlink(missing_ok=True)


class LocalDirectoryStore(ObjectStore):
    """Objects as files under `root`; `create` makes the root when it is missing."""

    def __init__(self, root: Path | str, *, create: bool = True):
        self.root = Path(root).expanduser().resolve()
        self.create = create

    @property
    def location(self) -> str:
        return self.root.as_uri()

    def _path(self, key: str) -> Path:
        parts = [p for p in key.split("/") if p]
        if not parts or any(p in (".", "..") for p in parts):
            raise StorageError(f"invalid object key {key!r}")
        return self.root.joinpath(*parts)

    def check(self) -> None:
        """Raises BucketMissing when the root is absent and `create` is off."""
        if not self.root.is_dir():
            if not self.create:
                raise BucketMissing(f"backup directory {self.root} does not exist; create it first")
            self.root.mkdir(parents=True, exist_ok=True)

    def open_upload(self, key: str) -> Upload:
        return _LocalUpload(key, self._path(key))

    def iter_bytes(self, key: str, chunk_size: int = 1 << 20) -> Iterator[bytes]:
        """Raises ObjectMissing when the file is absent."""
        try:
            handle = open(self._path(key), "rb")  # noqa: SIM115 - closed below, also on early exit
        except FileNotFoundError:
            raise ObjectMissing(f"{self.url(key)} does not exist") from None
        with handle:
            while chunk := handle.read(chunk_size):
                yield chunk

    def _walk(self, prefix: str) -> Iterator[tuple[str, Path]]:
        if not self.root.is_dir():
            return
        for dirpath, _dirs, files in os.walk(self.root):
            for name in files:
                path = Path(dirpath) / name
                key = path.relative_to(self.root).as_posix()
                if key.startswith(prefix):
                    yield key, path

    def list_objects(self, prefix: str) -> Iterator[StoredObject]:
        for key, path in self._walk(prefix):
            if PARTIAL not in path.name:
                yield StoredObject(key, path.stat().st_size, _mtime(path))

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def pending_uploads(self, prefix: str) -> list[PendingUpload]:
        return [
            PendingUpload(key.rsplit(PARTIAL, 1)[0], path.name, _mtime(path))
            for key, path in self._walk(prefix)
            if PARTIAL in path.name
        ]

    def abort_pending(self, pending: PendingUpload) -> None:
        self._path(pending.key).with_name(pending.upload_id).unlink(missing_ok=True)
