"""The one redaction function, and the DSN errors that used to leak pieces of a password.

Cases:
- a URL DSN whose password holds a space and `!`: psycopg's parse error quotes the password; the
  DatabaseUnavailable raised carries neither the password nor its words, and no chained cause;
- key/value DSN with an unterminated quote, and a bare password where the DSN belongs: masked the
  same way (masking does not depend on the DSN parsing);
- without the secret known, the patterns still mask URL credentials with spaces, an unterminated
  `password='...`, query tokens and bearer tokens;
- values of secret-named variables (S3 keys, webhook URLs with tokens, the backup encryption key)
  are masked wherever they appear; switches such as TOKENIZERS_PARALLELISM=false are not.
"""

from __future__ import annotations

import pytest

from llm_cost_ops_ops.postgres.connection import connect, mask_dsn
from llm_cost_ops_ops.postgres.errors import DatabaseUnavailable
from llm_cost_ops_ops.redaction import environment_secrets, redact, secret_parts

pytestmark = pytest.mark.unit

BAD_DSNS = {
    "url with a space": ("postgresql://leaky:S3cr3tPw! x@host/db", ["S3cr3tPw! x", "S3cr3tPw!"]),
    "unterminated quote": ("host=db user=app password='Unterminated Secr3t", ["Unterminated", "Secr3t"]),
    "bare password": ("Hunter2BarePassword", ["Hunter2BarePassword"]),
    "percent-encoded": (
        "postgresql://u:p%40ss%20w0rdXYZ@127.0.0.1:1/db",
        ["p%40ss%20w0rdXYZ", "p@ss w0rdXYZ"],
    ),
}


def _chain(exc: BaseException | None) -> list[str]:
    """The exception and every cause or context a traceback would print."""
    shown = []
    while exc is not None:
        shown.append(f"{type(exc).__name__}: {exc}")
        exc = exc.__cause__ or (None if exc.__suppress_context__ else exc.__context__)
    return shown


@pytest.mark.parametrize("case", BAD_DSNS)
def test_a_dsn_that_does_not_parse_leaks_nothing(case, monkeypatch):
    monkeypatch.delenv("LLM_COST_OPS_OPS_DEV_DATABASE_URL", raising=False)
    dsn, pieces = BAD_DSNS[case]
    with pytest.raises(DatabaseUnavailable) as raised:
        connect(dsn)
    shown = _chain(raised.value)
    assert len(shown) == 1, "no chained cause carries psycopg's text"
    text = shown[0]
    assert "\n" not in text
    for piece in pieces:
        assert piece not in text
    assert "***" in text


def test_mask_dsn_keeps_the_shape_of_a_url():
    assert mask_dsn("postgresql://leaky:S3cr3tPw! x@host/db") == "postgresql://leaky:***@host/db"
    assert mask_dsn("Hunter2BarePassword") == "***"


def test_secret_parts_without_parsing():
    parts = secret_parts("postgresql://leaky:S3cr3tPw! x@host/db?options=a@b")
    assert "S3cr3tPw! x" in parts and "S3cr3tPw!" in parts
    assert "x" not in parts  # too short to search for


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("connect postgresql://leaky:S3cr3tPw! x@host/db failed", "S3cr3tPw"),
        ("host=db password='Unterminated Secr3t", "Secr3t"),
        ('host=db password="dq Secr3t"', "Secr3t"),
        ("https://hooks.example/x?token=tok3n-abc&y=1", "tok3n-abc"),
        ("Authorization: Bearer eyJh.bGci.Oi", "eyJh"),
    ],
)
def test_patterns_mask_unknown_secrets(text, secret):
    assert secret not in redact(text, environ={})


def test_secret_named_variables():
    environ = {
        "LLM_COST_OPS_OPS_BACKUP_ACCESS_KEY_ID": "AKIAEXAMPLEKEYID",
        "LLM_COST_OPS_OPS_BACKUP_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG",
        "LLM_COST_OPS_OPS_BACKUP_KEY": "base64EncryptionKey==",
        "LLM_COST_OPS_OPS_SLACK_WEBHOOK_URL": "https://hooks.slack.example/services/T0/B0/XoXoToken",
        "TOKENIZERS_PARALLELISM": "false",
        "HOME": "/root",
    }
    assert "false" not in environment_secrets(environ) and "/root" not in environment_secrets(environ)
    text = " ".join(environ.values())
    out = redact(text, environ=environ)
    for name in list(environ)[:4]:
        assert environ[name] not in out
    assert out.endswith("false /root")
