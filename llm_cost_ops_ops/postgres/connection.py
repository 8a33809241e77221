"""Connecting to PostgreSQL without ever showing the DSN's password.

Every message the runner prints or raises goes through `redact`, which masks the password in
URL (`postgresql://user:secret@host/db`, `?password=secret`) and key/value (`password=secret`)
forms, and any literal occurrence of it (psycopg echoes a malformed DSN in its error).
"""

from __future__ import annotations

import re
from typing import Any

import psycopg
from psycopg import conninfo

from .errors import DatabaseUnavailable

MASK = "***"
APPLICATION_NAME = "llm-cost-ops-ops migrator"
CONNECT_TIMEOUT_SECONDS = 10
_URL_PASSWORD = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^:/?#@\s]*):[^\s]*@")
_QUERY_PASSWORD = re.compile(r"(?P<head>[?&]password=)[^&#\s]*", re.IGNORECASE)
_KV_PASSWORD = re.compile(r"(?P<head>(?<![?&])\bpassword\s*=\s*)(?:'(?:[^'\\]|\\.)*'|[^\s']+)", re.IGNORECASE)
_MIN_LITERAL = 4  # shorter passwords are not searched for literally: too many false matches


def _password(dsn: str) -> str:
    try:
        return str(conninfo.conninfo_to_dict(dsn).get("password") or "")
    except psycopg.Error:
        return ""


def mask_dsn(dsn: str) -> str:
    """The DSN with its password replaced by ***."""
    masked = _URL_PASSWORD.sub(lambda m: f"{m['head']}:{MASK}@", dsn)
    masked = _QUERY_PASSWORD.sub(lambda m: f"{m['head']}{MASK}", masked)
    return _KV_PASSWORD.sub(lambda m: f"{m['head']}{MASK}", masked)


def redact(text: str, dsn: str) -> str:
    """`text` with the DSN, and the DSN's password wherever it appears, masked."""
    text = text.replace(dsn, mask_dsn(dsn)) if dsn else text
    text = mask_dsn(text)
    secret = _password(dsn)
    if len(secret) >= _MIN_LITERAL:
        text = text.replace(secret, MASK)
    return text


def connect(dsn: str, *, application_name: str = APPLICATION_NAME) -> psycopg.Connection[Any]:
    """An autocommit connection speaking UTF-8 (the migration files' encoding).

    The DSN's own application_name and connect_timeout win over the defaults given here.
    Raises DatabaseUnavailable, with the DSN masked, when the server cannot be reached or refuses.
    """
    try:
        given = conninfo.conninfo_to_dict(dsn)
    except psycopg.Error as exc:
        raise DatabaseUnavailable(f"invalid DSN {mask_dsn(dsn)}: {redact(str(exc), dsn)}") from None
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
