"""A streamed S3 upload that fills every part to full size itself.

boto3's `upload_fileobj` on a pipe sends each short read as its own part, and real S3 rejects parts
under 5 MiB; here bytes are buffered until a part is full. Parts are sent by a small pool while the
next one fills, so memory stays at about (in-flight parts + 1) x part size whatever the object
size. An object smaller than one part is sent as a single PutObject at commit. The multipart
upload is aborted on any failure, so no partial object ever becomes visible.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Protocol, TypeVar

from .base import Upload
from .errors import StorageError
from .s3_settings import S3Settings

T = TypeVar("T")
MAX_PARTS = 10_000
log = logging.getLogger(__name__)


def part_size(number: int, base: int, cap: int) -> int:
    """The size of part `number` (1-based): `base`, doubling every 1000 parts up to `cap`, so an
    object of any size fits S3's 10,000 parts while small and mid-sized dumps use small parts."""
    return min(base << ((number - 1) // 1000), max(cap, base))


class S3Bucket(Protocol):
    """What an upload needs of its store (`S3Store` is one): the settings, the boto3 client, and
    the store's key prefixing, error wrapping and encryption arguments."""

    settings: S3Settings
    client: Any

    def full_key(self, key: str) -> str: ...

    def call(self, what: str, key: str, fn: Callable[[], T]) -> T: ...

    def sse_args(self) -> dict[str, str]: ...


class S3MultipartUpload(Upload):
    def __init__(self, store: S3Bucket, key: str):
        super().__init__(key)
        self._store = store
        self._full_key = store.full_key(key)
        # Each part is its own bytearray, handed to botocore as it is: no copy when a part is sent
        # (a file-like body would also avoid the copy, but http.client sends those 8 KiB at a time).
        self._part = bytearray()
        self._upload_id: str | None = None
        self._parts: list[dict[str, Any]] = []
        self._inflight: deque[Future[dict[str, Any]]] = deque()
        self._pool: ThreadPoolExecutor | None = None
        self._next_part = 1
        self._failed: BaseException | None = None

    def _part_size(self) -> int:
        settings = self._store.settings
        return part_size(self._next_part, settings.part_size, settings.max_part_size)

    def write(self, data: bytes | bytearray | memoryview) -> int:
        """Raises StorageError when an earlier part could not be sent (after botocore's retries)."""
        if self._failed is not None:
            raise self._failed
        view = memoryview(data)
        while view:
            room = self._part_size() - len(self._part)
            self._part += view[:room]
            view = view[room:]
            if len(self._part) >= self._part_size():
                self._send(self._part)
                self._part = bytearray()
        self.bytes_written += len(data)
        return len(data)

    def _start(self) -> str:
        if self._upload_id is None:
            response = self._store.call(
                "start multipart upload of",
                self.key,
                lambda: self._store.client.create_multipart_upload(
                    Bucket=self._store.settings.bucket, Key=self._full_key, **self._store.sse_args()
                ),
            )
            self._upload_id = str(response["UploadId"])
            self._pool = ThreadPoolExecutor(self._store.settings.parts_in_flight, "s3-part")
        return self._upload_id

    def _send(self, part: bytearray) -> None:
        upload_id = self._start()
        number = self._next_part
        if number > MAX_PARTS:
            raise StorageError(f"upload of {self.key}: more than {MAX_PARTS} parts; raise part_size")
        self._next_part += 1
        while len(self._inflight) >= self._store.settings.parts_in_flight:
            self._collect(self._inflight.popleft())
        assert self._pool is not None
        self._inflight.append(self._pool.submit(self._upload_part, upload_id, number, part))

    def _upload_part(self, upload_id: str, number: int, part: bytearray) -> dict[str, Any]:
        response = self._store.call(
            f"upload part {number} of",
            self.key,
            lambda: self._store.client.upload_part(
                Bucket=self._store.settings.bucket,
                Key=self._full_key,
                UploadId=upload_id,
                PartNumber=number,
                Body=part,
            ),
        )
        return {"PartNumber": number, "ETag": response["ETag"]}

    def _collect(self, future: Future[dict[str, Any]]) -> None:
        try:
            self._parts.append(future.result())
        except BaseException as exc:
            self._failed = exc
            raise

    def commit(self) -> None:
        """Send what is buffered and complete the upload. Raises StorageError after aborting."""
        try:
            if self._upload_id is None:
                body = self._part
                self._store.call(
                    "upload",
                    self.key,
                    lambda: self._store.client.put_object(
                        Bucket=self._store.settings.bucket,
                        Key=self._full_key,
                        Body=body,
                        **self._store.sse_args(),
                    ),
                )
            else:
                if self._part:
                    self._send(self._part)
                    self._part = bytearray()
                while self._inflight:
                    self._collect(self._inflight.popleft())
                parts = sorted(self._parts, key=lambda p: p["PartNumber"])
                upload_id = self._upload_id
                self._store.call(
                    "complete multipart upload of",
                    self.key,
                    lambda: self._store.client.complete_multipart_upload(
                        Bucket=self._store.settings.bucket,
                        Key=self._full_key,
                        UploadId=upload_id,
                        MultipartUpload={"Parts": parts},
                    ),
                )
        except BaseException:
            self.abort()
            raise
        self.committed = True
        self._shutdown()

    def _shutdown(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def abort(self) -> None:
        self._part = bytearray()
        for future in self._inflight:
            future.cancel()
        self._inflight.clear()
        self._shutdown()  # parts still being sent finish first, so none lands after the abort
        if self._upload_id is None or self.committed:
            return
        upload_id, self._upload_id = self._upload_id, None
        try:
            self._store.call(
                "abort multipart upload of",
                self.key,
                lambda: self._store.client.abort_multipart_upload(
                    Bucket=self._store.settings.bucket, Key=self._full_key, UploadId=upload_id
                ),
            )
        except Exception as exc:
            # Left for retention, which aborts multipart uploads older than a day.
            log.warning("could not abort the multipart upload of %s: %s", self.key, exc)
