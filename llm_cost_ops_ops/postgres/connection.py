"""Connecting to PostgreSQL without ever showing the DSN's password.

Every message the runner prints or raises goes through `redact`, which hands the DSN to the
project's one redaction function: the password is masked in URL (`postgresql://user:secret@host/db`,
`?password=secret`) and key/value (`password=secret`, quoted or not, terminated or not) forms, and
wherever it or one of its words appears (psycopg echoes pieces of a malformed DSN in its error).
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import conninfo

from .. import redaction
from ..redaction import MASK, secret_parts
from .errors import DatabaseUnavailable, InvalidDsn

APPLICATION_NAME = "llm-cost-ops-ops migrator"
CONNECT_TIMEOUT_SECONDS = 10


def mask_dsn(dsn: str) -> str:
    """The DSN with its password replaced by ***; *** alone for a value that is neither a URL nor
    key/value pairs (a bare password set where the DSN belongs) or that is a secret variable's value."""
    if "://" not in dsn and "=" not in dsn:
        return MASK
    return redaction.redact(dsn, secret_parts(dsn)[1:])


def redact(text: str, dsn: str) -> str:
    """`text` with the DSN, and the DSN's password and its words wherever they appear, masked.

    The one judge of secrets (llm_cost_ops_ops.redaction) finds the password by text search, not by
    parsing: a DSN psycopg cannot parse is the one whose pieces psycopg quotes in its error.
    """
    text = text.replace(dsn, mask_dsn(dsn)) if len(dsn) >= redaction.MIN_SECRET_CHARS else text
    return redaction.redact(text, [dsn])


def connect(dsn: str, *, application_name: str = APPLICATION_NAME) -> psycopg.Connection[Any]:
    """An autocommit connection speaking UTF-8 (the migration files' encoding).

    The DSN's own application_name and connect_timeout win over the defaults given here.
    Raises DatabaseUnavailable, with the DSN masked, when the server cannot be reached or refuses.
    """
    try:
        given = conninfo.conninfo_to_dict(dsn)
    except psycopg.Error as exc:
        # Not shown even masked: what does not parse cannot be trusted to be masked right.
        message = " ".join(redact(str(exc), dsn).split())
        raise InvalidDsn(f"invalid DSN {MASK}: {message}") from None
    defaults: dict[str, Any] = {
        "application_name": application_name,
        "connect_timeout": CONNECT_TIMEOUT_SECONDS,
    }
    extra = {key: value for key, value in defaults.items() if key not in given}
    try:
        conn = psycopg.connect(dsn, autocommit=True, client_encoding="utf8", **extra)
    except psycopg.Error as exc:
        message = " ".join(redact(str(exc), dsn).split())
        raise DatabaseUnavailable(f"cannot connect to {mask_dsn(dsn)}: {message}") from None
    return conn
