"""How botocore failures map onto the storage error tree, with messages a person can act on.

botocore has already retried what is transient (5xx, throttling, dropped connections) by the time
an error reaches here, so a transient failure here means the retries ran out.
"""

from __future__ import annotations

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionError,
    HTTPClientError,
    IncompleteReadError,
    NoCredentialsError,
    PartialCredentialsError,
    ResponseStreamingError,
)

from .errors import BucketMissing, ObjectMissing, StorageAccessDenied, StorageError, StorageUnavailable

_DENIED = {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "InvalidToken"}
_MISSING_BUCKET = {"NoSuchBucket"}
_MISSING_KEY = {"NoSuchKey", "NoSuchUpload"}
# Transport failures that are worth resuming a download after (botocore does not retry a body
# already being read).
# A body cut short shows up as a dropped connection, or as a body shorter than its length.
TRANSIENT_IO: tuple[type[Exception], ...] = (
    ConnectionError,
    HTTPClientError,
    IncompleteReadError,
    ResponseStreamingError,
)


def _code_and_status(exc: ClientError) -> tuple[str, int]:
    error = exc.response.get("Error") or {}
    status = int((exc.response.get("ResponseMetadata") or {}).get("HTTPStatusCode") or 0)
    return str(error.get("Code") or status), status


def storage_error(exc: Exception, what: str, where: str) -> StorageError:
    """A StorageError subclass for a botocore exception; `what` is the operation, `where` the URL."""
    if isinstance(exc, StorageError):
        return exc
    if isinstance(exc, (NoCredentialsError, PartialCredentialsError)):
        return StorageAccessDenied(
            f"{what} {where}: no S3 credentials; set the access key id and secret access key "
            "(or AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY)"
        )
    if isinstance(exc, ClientError):
        code, status = _code_and_status(exc)
        message = f"{what} {where}: {code} (HTTP {status})"
        if code in _MISSING_BUCKET:
            return BucketMissing(f"{message}: the bucket does not exist; create it or enable create_bucket")
        if code in _DENIED or status == 403:
            return StorageAccessDenied(f"{message}: check the access key, secret and bucket policy")
        if code in _MISSING_KEY or status == 404:
            return ObjectMissing(message)
        if status >= 500 or status == 429:
            return StorageUnavailable(f"{message}: the server kept failing after retries")
        return StorageError(message)
    if isinstance(exc, TRANSIENT_IO):
        return StorageUnavailable(f"{what} {where}: connection failed after retries ({type(exc).__name__})")
    if isinstance(exc, BotoCoreError):
        return StorageError(f"{what} {where}: {exc}")
    return StorageError(f"{what} {where}: {type(exc).__name__}: {exc}")
