"""The one judge of what text may leave the project: `redact` masks secret values with ***.

Every exit (exception messages, logs, event metadata, notifications, findings) passes through
`redact`. It masks, in this order:
- every known secret value and the parts of it a library may quote on its own: the value given by
  the caller and the values of variables whose names say they are secret, each with the password
  of a DSN or URL and that password's words; found by plain text search, never by parsing the DSN
  (a DSN that does not parse is the one whose pieces end up in an error message);
- URL credentials (`scheme://user:password@`, the password may hold spaces), `?password=` and
  `password=` / `password='...` (an unterminated quote masks to the end of the line), bearer and
  basic tokens, and `KEY=value` pairs whose key names a secret.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from urllib.parse import unquote

from . import process_env

MASK = "***"
# Shorter values are not searched for literally: they would mask ordinary words.
MIN_SECRET_CHARS = 4
# Values of secret-named variables that are switches, not secrets (TOKENIZERS_PARALLELISM=false).
_NOT_SECRETS = frozenset({"true", "false", "yes", "no", "on", "off", "none", "null"})

# Variable names whose values are secrets: passwords, tokens, DSNs, webhook URLs, keys (the backup
# encryption key LLM_COST_OPS_OPS_BACKUP_KEY, S3 access keys).
_SECRET_NAME = re.compile(
    r"(?i)(PASSWORD|SECRET|TOKEN|API_KEY|DATABASE_URL|_DSN|WEBHOOK_URL|PRIVATE_KEY|_KEY$|_KEY_ID$|ACCESS_KEY)"
)
_URL_CREDENTIALS = re.compile(r"(?P<head>[a-zA-Z][a-zA-Z0-9+.-]*://[^/\s:@]*):[^@/\n]*@")
_QUERY_SECRET = re.compile(r"(?i)(?P<head>[?&](?:password|passwd|token|secret|key|sig|signature)=)[^&#\s]*")
_KV_PASSWORD = re.compile(
    r"(?i)(?P<head>(?<![?&\w])password\s*=\s*)(?:'(?:[^'\\\n]|\\.)*'?|\"(?:[^\"\\\n]|\\.)*\"?|[^\s'\"]+)"
)
_BEARER = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+")
_SECRET_ASSIGNMENT = re.compile(
    r"(?i)\b(?P<key>[A-Z0-9_]*(?:PASSWORD|SECRET|TOKEN|API_KEY|APIKEY|DATABASE_URL|PRIVATE_KEY)"
    r"[A-Z0-9_]*|password|passwd|pwd|token|secret|api[_-]?key|authorization)"
    r"(?P<sep>\s*[=:]\s*)(?P<quote>['\"]?)[^\s'\",;&#]+"
)
_KV_PASSWORD_VALUE = re.compile(
    r"(?i)(?<![?&\w])password\s*=\s*(?:'(?P<quoted>(?:[^'\\]|\\.)*)|(?P<bare>\S+))"
)


def _passwords(value: str) -> list[str]:
    """Candidate passwords in a DSN or URL, found without parsing it (it may not parse)."""
    found: list[str] = []
    _, sep, rest = value.partition("://")
    if sep and "@" in rest:
        # The userinfo ends at an @; which one is ambiguous in a malformed URL, so take both.
        for userinfo in {rest[: rest.find("@")], rest[: rest.rfind("@")]}:
            if ":" in userinfo:
                found.append(userinfo.split(":", 1)[1])
    for match in _KV_PASSWORD_VALUE.finditer(value):
        quoted = match.group("quoted")
        if quoted is not None:
            found.append(quoted.removesuffix("'"))
        else:
            found.append(match.group("bare"))
    for match in re.finditer(r"(?i)[?&]password=([^&#]*)", value):
        found.append(match.group(1))
    return found


def secret_parts(value: str) -> list[str]:
    """`value` and the pieces a library may quote on their own: each password in it (as written and
    URL-decoded) and that password's words."""
    parts = [value]
    for password in _passwords(value):
        parts += [password, unquote(password), *re.split(r"[\s'\"]+", password)]
    return [part for part in dict.fromkeys(parts) if len(part) >= MIN_SECRET_CHARS]


def environment_secrets(environ: Mapping[str, str] | None = None) -> list[str]:
    """Values of environment variables whose names say they are secret."""
    source = process_env.environ() if environ is None else environ
    return [
        value
        for name, value in source.items()
        if _SECRET_NAME.search(name) and len(value) >= MIN_SECRET_CHARS and value.lower() not in _NOT_SECRETS
    ]


def redact(text: str, secrets: Iterable[str] = (), *, environ: Mapping[str, str] | None = None) -> str:
    """`text` with every secret masked: the given values, secret-named environment variables' values
    (from `environ`, default the process environment), the parts of both, and secret-shaped patterns."""
    values = {
        part
        for secret in (*secrets, *environment_secrets(environ))
        if secret
        for part in secret_parts(secret)
    }
    for value in sorted(values, key=len, reverse=True):
        text = text.replace(value, MASK)
    text = _URL_CREDENTIALS.sub(lambda m: f"{m.group('head')}:{MASK}@", text)
    text = _QUERY_SECRET.sub(lambda m: f"{m.group('head')}{MASK}", text)
    text = _KV_PASSWORD.sub(lambda m: f"{m.group('head')}{MASK}", text)
    text = _BEARER.sub(lambda m: f"{m.group(1)} {MASK}", text)
    return _SECRET_ASSIGNMENT.sub(lambda m: f"{m.group('key')}{m.group('sep')}{m.group('quote')}{MASK}", text)
