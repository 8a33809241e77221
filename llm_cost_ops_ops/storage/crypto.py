"""Client-side encryption of backup objects: AES-256-GCM, streamed in framed chunks.

Layout: a 32-byte header (magic, key fingerprint, random file id), then frames of
`flag (1) | length (4) | nonce (12) | ciphertext + tag (length)`. Each chunk has its own random
nonce and tag; the associated data binds the file id, the chunk index and the final-chunk flag, so
frames cannot be reordered, moved between files, dropped, or cut off at the end unnoticed.
The key (32 bytes, base64) comes from an environment variable and never leaves this module.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import struct
from collections.abc import Iterable, Iterator, Mapping
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .. import process_env
from .errors import DecryptionFailed, EncryptionError, EncryptionKeyMissing

KEY_ENV = "LLM_COST_OPS_OPS_BACKUP_KEY"
ALGORITHM = "AES-256-GCM-framed-v1"
MAGIC = b"LCOOENC1"
CHUNK = 1 << 20
_HEADER = struct.Struct(">8s8s16s")
_FRAME = struct.Struct(">BI12s")
_TAG = 16


class Writable(Protocol):
    def write(self, data: bytes | bytearray | memoryview, /) -> int: ...


class EncryptionKey:
    """A 256-bit key, known to the outside only by its fingerprint."""

    def __init__(self, secret: bytes):
        if len(secret) != 32:
            raise EncryptionError(f"a backup encryption key is 32 bytes, this one is {len(secret)}")
        self._aead = AESGCM(secret)
        self._fingerprint = hashlib.sha256(b"llm-cost-ops-ops backup key\0" + secret).digest()[:8]

    @property
    def fingerprint(self) -> str:
        return self._fingerprint.hex()

    def __repr__(self) -> str:
        return f"EncryptionKey(fingerprint={self.fingerprint})"

    @classmethod
    def from_base64(cls, text: str, source: str = "the key") -> EncryptionKey:
        """Raises EncryptionError (without echoing the value) when it is not base64 of 32 bytes."""
        try:
            secret = base64.b64decode(text.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise EncryptionError(f"{source} is not valid base64 (expected 32 random bytes)") from None
        if len(secret) != 32:
            raise EncryptionError(f"{source} decodes to {len(secret)} bytes; AES-256 needs 32")
        return cls(secret)

    @classmethod
    def from_env(cls, name: str = KEY_ENV, environ: Mapping[str, str] | None = None) -> EncryptionKey | None:
        """The key in environment variable `name`, or None when it is unset or empty."""
        value = (process_env.environ() if environ is None else environ).get(name, "")
        return cls.from_base64(value, f"${name}") if value.strip() else None

    @staticmethod
    def generate() -> str:
        """A new random key, base64-encoded, for the environment variable."""
        return base64.b64encode(os.urandom(32)).decode()


class EncryptingWriter:
    """Encrypt what is written into frames on `sink`; close() writes the final frame."""

    def __init__(self, sink: Writable, key: EncryptionKey, chunk_size: int = CHUNK):
        self._sink, self._key, self._chunk = sink, key, chunk_size
        self._file_id = os.urandom(16)
        self._index = 0
        self._buffer = bytearray()
        sink.write(_HEADER.pack(MAGIC, key._fingerprint, self._file_id))

    def _emit(self, plaintext: bytes | bytearray | memoryview, final: bool) -> None:
        nonce = os.urandom(12)
        aad = self._file_id + struct.pack(">QB", self._index, final)
        sealed = self._key._aead.encrypt(nonce, bytes(plaintext), aad)
        self._sink.write(_FRAME.pack(final, len(sealed), nonce))
        self._sink.write(sealed)
        self._index += 1

    def write(self, data: bytes | bytearray | memoryview) -> int:
        self._buffer += data
        # Keep at least one byte back, so the last chunk is only ever written by close(), flagged.
        while len(self._buffer) > self._chunk:
            self._emit(memoryview(self._buffer)[: self._chunk], final=False)
            del self._buffer[: self._chunk]
        return len(data)

    def close(self) -> None:
        self._emit(self._buffer, final=True)
        self._buffer = bytearray()


def is_encrypted(head: bytes) -> bool:
    return head[: len(MAGIC)] == MAGIC


def decrypt_chunks(
    chunks: Iterable[bytes], key: EncryptionKey | None, what: str, chunk_size: int = CHUNK
) -> Iterator[bytes]:
    """Decrypt a stream written by EncryptingWriter; `what` names the object in errors.

    Raises EncryptionKeyMissing without a key, DecryptionFailed for a wrong key, tampering or
    truncation (no final frame), or bytes after the final frame.
    """
    buffer = bytearray()
    header: tuple[bytes, bytes, bytes] | None = None
    index, done = 0, False
    limit = chunk_size + _TAG
    for chunk in chunks:
        buffer += chunk
        if header is None:
            if len(buffer) < _HEADER.size:
                continue
            header = _HEADER.unpack_from(buffer)
            del buffer[: _HEADER.size]
            magic, fingerprint, _ = header
            if magic != MAGIC:
                raise DecryptionFailed(f"{what} is not an encrypted backup object (bad header)")
            if key is None:
                raise EncryptionKeyMissing(
                    f"{what} is encrypted ({ALGORITHM}, key fingerprint {fingerprint.hex()}); "
                    f"set {KEY_ENV} to that key (base64 of 32 bytes) to read it"
                )
            if fingerprint != key._fingerprint:
                raise DecryptionFailed(
                    f"{what} was encrypted with key {fingerprint.hex()}, not the configured "
                    f"key {key.fingerprint}"
                )
        while len(buffer) >= _FRAME.size:
            if done:
                raise DecryptionFailed(f"{what}: data after the final chunk")
            final, length, nonce = _FRAME.unpack_from(buffer)
            if final > 1 or length > limit or length < _TAG:
                raise DecryptionFailed(f"{what}: malformed frame {index}")
            if len(buffer) < _FRAME.size + length:
                break
            sealed = bytes(memoryview(buffer)[_FRAME.size : _FRAME.size + length])
            del buffer[: _FRAME.size + length]
            assert key is not None and header is not None
            try:
                plain = key._aead.decrypt(nonce, sealed, header[2] + struct.pack(">QB", index, final))
            except InvalidTag:
                raise DecryptionFailed(f"{what}: chunk {index} fails authentication (tampered?)") from None
            index, done = index + 1, bool(final)
            yield plain
    if done and buffer:
        raise DecryptionFailed(f"{what}: data after the final chunk")
    if not done:
        raise DecryptionFailed(f"{what} is truncated: the final encrypted chunk is missing")
