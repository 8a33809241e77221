"""Typed object-storage errors: what failed, where (store URL, key), and what to do.

No message carries a secret: keys, secret access keys and DSN passwords stay out of them.
"""

from __future__ import annotations

from ..errors import OpsError


class StorageError(OpsError):
    """Base of every error the storage layer raises."""


class StorageUnavailable(StorageError):
    """The store could not be reached, or kept failing after retries (5xx, dropped connections)."""


class StorageAccessDenied(StorageError):
    """The store refused the credentials or the operation (403, bad signature, unknown key id)."""


class BucketMissing(StorageError):
    """The bucket (or local root) does not exist and the store is not configured to create it."""


class ObjectMissing(StorageError):
    """A key the caller named is not in the store."""


class ChecksumMismatch(StorageError):
    """Stored bytes do not match the checksum their manifest recorded, or cannot be decoded."""


class BackupNotFound(StorageError):
    """No backup matches the request (none at all, none verified, or not that id)."""


class BackupDamaged(StorageError):
    """A backup's manifest cannot be read, or objects it names are missing: it needs a person."""


class ManifestInvalid(StorageError):
    """A backup manifest or verification marker could not be parsed."""


class EncryptionError(StorageError):
    """Client-side encryption: a malformed key, a missing key, or data that fails to decrypt."""


class EncryptionKeyMissing(EncryptionError):
    """An encrypted object was read without the key it was written with."""


class DecryptionFailed(EncryptionError):
    """Wrong key, tampered or truncated ciphertext."""
