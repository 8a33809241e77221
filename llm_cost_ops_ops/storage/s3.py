"""An S3-API object store (AWS S3, MinIO, SeaweedFS, Ceph RGW) on boto3.

Transient failures (5xx, throttling, dropped or refused connections) are retried by botocore's
`standard` retry mode up to `max_attempts`; what still fails is raised as a typed StorageError.
Credentials come from the settings, or, when those are empty, from boto3's usual chain
(AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, a profile, an instance role).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from .base import ObjectStore, PendingUpload, StoredObject, Upload
from .errors import BucketMissing, StorageUnavailable
from .s3_errors import TRANSIENT_IO, storage_error
from .s3_settings import S3Settings
from .s3_upload import S3MultipartUpload

T = TypeVar("T")

__all__ = ["S3Settings", "S3Store"]


class S3Store(ObjectStore):
    """Objects under `s3://bucket/prefix/`. `client` may be injected (tests, a shared session)."""

    def __init__(self, settings: S3Settings, client: Any = None):
        self.settings = settings
        self.client = client or self._make_client(settings)

    @staticmethod
    def _make_client(s: S3Settings) -> Any:
        config = Config(
            retries={"mode": "standard", "max_attempts": s.max_attempts},
            connect_timeout=s.connect_timeout,
            read_timeout=s.read_timeout,
            s3={"addressing_style": s.addressing_style},
            max_pool_connections=max(10, s.parts_in_flight + 2),
        )
        return boto3.session.Session().client(
            "s3",
            endpoint_url=s.endpoint_url or None,
            region_name=s.region or None,
            aws_access_key_id=s.access_key_id or None,
            aws_secret_access_key=s.secret_access_key or None,
            aws_session_token=s.session_token or None,
            config=config,
        )

    @property
    def location(self) -> str:
        prefix = self.settings.prefix.strip("/")
        return f"s3://{self.settings.bucket}/{prefix}" if prefix else f"s3://{self.settings.bucket}"

    def _where(self, key: str = "") -> str:
        endpoint = f" at {self.settings.endpoint_url}" if self.settings.endpoint_url else ""
        return f"{self.url(key) if key else self.location}{endpoint}"

    def full_key(self, key: str) -> str:
        prefix = self.settings.prefix.strip("/")
        return f"{prefix}/{key}" if prefix else key

    def _relative(self, full_key: str) -> str:
        prefix = self.settings.prefix.strip("/")
        return full_key[len(prefix) + 1 :] if prefix else full_key

    def call(self, what: str, key: str, fn: Callable[[], T]) -> T:
        """Run one boto3 call; raise a StorageError naming the operation and the object."""
        try:
            return fn()
        except Exception as exc:
            raise storage_error(exc, what, self._where(key)) from None

    def sse_args(self) -> dict[str, str]:
        args: dict[str, str] = {}
        if self.settings.server_side_encryption:
            args["ServerSideEncryption"] = self.settings.server_side_encryption
        if self.settings.sse_kms_key_id:
            args["SSEKMSKeyId"] = self.settings.sse_kms_key_id
        return args

    def check(self) -> None:
        """Raises BucketMissing (unless create_bucket), StorageAccessDenied, StorageUnavailable."""
        bucket = self.settings.bucket
        try:
            self.client.head_bucket(Bucket=bucket)
            return
        except ClientError as exc:
            status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
            if status != 404:
                raise storage_error(exc, "check bucket", self._where()) from None
        except Exception as exc:
            raise storage_error(exc, "check bucket", self._where()) from None
        if not self.settings.create_bucket:
            raise BucketMissing(
                f"bucket {bucket!r} does not exist ({self._where()}); "
                "create it, or set create_bucket to let backups create it"
            )
        kwargs: dict[str, Any] = {"Bucket": bucket}
        if self.settings.region and self.settings.region != "us-east-1":
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": self.settings.region}
        self.call("create bucket", "", lambda: self.client.create_bucket(**kwargs))

    def open_upload(self, key: str) -> Upload:
        return S3MultipartUpload(self, key)

    def iter_bytes(self, key: str, chunk_size: int = 1 << 20) -> Iterator[bytes]:
        """Stream an object; a connection dropped mid-body resumes with a ranged GET pinned to
        the same ETag (at most `download_resumes` times). Raises ObjectMissing, StorageUnavailable."""
        offset, etag, resumes = 0, "", 0
        while True:
            extra = {"Range": f"bytes={offset}-", "IfMatch": etag} if offset else {}

            def get(extra: dict[str, str] = extra) -> Any:
                return self.client.get_object(Bucket=self.settings.bucket, Key=self.full_key(key), **extra)

            response = self.call("download", key, get)
            etag = etag or str(response.get("ETag") or "")
            try:
                for chunk in response["Body"].iter_chunks(chunk_size):
                    offset += len(chunk)
                    yield chunk
                return
            except TRANSIENT_IO as exc:
                resumes += 1
                if resumes > self.settings.download_resumes:
                    raise StorageUnavailable(
                        f"download {self._where(key)}: connection dropped {resumes} times "
                        f"({type(exc).__name__}) at byte {offset}"
                    ) from None
            finally:
                response["Body"].close()

    def list_objects(self, prefix: str) -> Iterator[StoredObject]:
        paginator = self.client.get_paginator("list_objects_v2")
        pages = paginator.paginate(Bucket=self.settings.bucket, Prefix=self.full_key(prefix))
        try:
            for page in pages:
                for item in page.get("Contents") or []:
                    yield StoredObject(self._relative(item["Key"]), int(item["Size"]), item["LastModified"])
        except Exception as exc:
            raise storage_error(exc, "list", self._where(prefix)) from None

    def delete(self, key: str) -> None:
        self.call(
            "delete",
            key,
            lambda: self.client.delete_object(Bucket=self.settings.bucket, Key=self.full_key(key)),
        )

    def pending_uploads(self, prefix: str) -> list[PendingUpload]:
        paginator = self.client.get_paginator("list_multipart_uploads")
        found: list[PendingUpload] = []
        try:
            for page in paginator.paginate(Bucket=self.settings.bucket, Prefix=self.full_key(prefix)):
                for item in page.get("Uploads") or []:
                    found.append(
                        PendingUpload(self._relative(item["Key"]), item["UploadId"], item["Initiated"])
                    )
        except Exception as exc:
            raise storage_error(exc, "list multipart uploads under", self._where(prefix)) from None
        return found

    def abort_pending(self, pending: PendingUpload) -> None:
        self.call(
            "abort multipart upload of",
            pending.key,
            lambda: self.client.abort_multipart_upload(
                Bucket=self.settings.bucket, Key=self.full_key(pending.key), UploadId=pending.upload_id
            ),
        )
