"""A local-directory object store: the embedded default, and the second backend the tests run.

An upload writes `<key>.partial-<id>` beside its final name and renames it on commit (same
directory, so the rename is atomic): a reader never sees half a file. Leftover partial files are
this store's pending uploads. Files are 0600 in 0700 directories (private_files); an I/O error
is a StorageError naming the path and what to do (no space on which file, permission denied on
which directory), never a raw OSError.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from ..private_files import describe_os_error, open_private, private_directory
from .base import ObjectStore, PendingUpload, StoredObject, Upload
from .errors import BucketMissing, ObjectMissing, StorageAccessDenied, StorageError

PARTIAL = ".partial-"


def io_error(exc: OSError, path: Path, doing: str) -> StorageError:
    """The StorageError for an OSError on `path` (StorageAccessDenied for a permission problem)."""
    kind = StorageAccessDenied if isinstance(exc, PermissionError) else StorageError
    return kind(f"local backup store: {describe_os_error(exc, path, doing)}")


def _mtime(path: Path) -> datetime:
    return datetime.fromtimestamp(path.stat().st_mtime, UTC)


class _LocalUpload(Upload):
    def __init__(self, key: str, final: Path, root: Path):
        super().__init__(key)
        self._final = final
        self._tmp = final.with_name(f"{final.name}{PARTIAL}{uuid.uuid4().hex[:12]}")
        try:
            private_directory(final.parent, root)
            self._file = open_private(self._tmp)
        except OSError as exc:
            raise io_error(exc, final, "creating") from None

    def write(self, data: bytes | bytearray | memoryview) -> int:
        try:
            written = self._file.write(data)
        except OSError as exc:
            self.abort()  # a full disk is not made fuller by the partial file
            raise io_error(exc, self._final, "writing") from None
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
            raise io_error(exc, self._final, "writing") from None
        self.committed = True

    def abort(self) -> None:
        with contextlib.suppress(OSError):  # closing flushes, which fails again on a full disk
            self._file.close()
        with contextlib.suppress(OSError):
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
            try:
                self.root.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise io_error(exc, self.root, "creating") from None
        try:
            private_directory(self.root)
        except OSError as exc:
            raise io_error(exc, self.root, "creating") from None

    def open_upload(self, key: str) -> Upload:
        return _LocalUpload(key, self._path(key), self.root)

    def iter_bytes(self, key: str, chunk_size: int = 1 << 20) -> Iterator[bytes]:
        """Raises ObjectMissing when the file is absent."""
        try:
            handle = open(self._path(key), "rb")  # noqa: SIM115 - closed below, also on early exit
        except FileNotFoundError:
            raise ObjectMissing(f"{self.url(key)} does not exist") from None
        except OSError as exc:
            raise io_error(exc, self._path(key), "reading") from None
        with handle:
            while True:
                try:
                    chunk = handle.read(chunk_size)
                except OSError as exc:
                    raise io_error(exc, self._path(key), "reading") from None
                if not chunk:
                    return
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
        path = self._path(key)
        try:
            path.unlink(missing_ok=True)
        except OSError as exc:
            raise io_error(exc, path, "deleting") from None

    def pending_uploads(self, prefix: str) -> list[PendingUpload]:
        return [
            PendingUpload(key.rsplit(PARTIAL, 1)[0], path.name, _mtime(path))
            for key, path in self._walk(prefix)
            if PARTIAL in path.name
        ]

    def abort_pending(self, pending: PendingUpload) -> None:
        self._path(pending.key).with_name(pending.upload_id).unlink(missing_ok=True)
