"""What a notification says, with secrets removed, as a generic webhook body or a Slack message."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

SUMMARY_CHARS = 600
MASK = "***"
_URL_CREDENTIALS = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)[^/\s:@]+:[^/\s@]*@")
_BEARER = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+")
_SECRET_ASSIGNMENT = re.compile(
    r"(?i)\b(?P<key>[A-Z0-9_]*(?:PASSWORD|SECRET|TOKEN|API_KEY|APIKEY|DATABASE_URL|PRIVATE_KEY)"
    r"[A-Z0-9_]*|password|passwd|pwd|token|secret|api[_-]?key|authorization)"
    r"(?P<sep>\s*[=:]\s*)(?P<quote>['\"]?)[^\s'\",;]+"
)


# Variable names whose values are secrets: passwords, tokens, DSNs, webhook URLs, keys (the backup
# encryption key LLM_COST_OPS_OPS_BACKUP_KEY, S3 access keys).
_SECRET_NAME = re.compile(
    r"(?i)(PASSWORD|SECRET|TOKEN|API_KEY|DATABASE_URL|_DSN|WEBHOOK_URL|PRIVATE_KEY|_KEY$|ACCESS_KEY)"
)


def environment_secrets(environ: Mapping[str, str] | None = None) -> list[str]:
    """Values of environment variables whose names say they are secret: redacted wherever they appear."""
    source = os.environ if environ is None else environ
    return [value for name, value in source.items() if _SECRET_NAME.search(name) and len(value) >= 4]


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """`text` with known secret values, URL credentials, bearer tokens and `KEY=value` pairs whose
    key names a secret replaced by ***."""
    for value in sorted((s for s in secrets if s and len(s) >= 4), key=len, reverse=True):
        text = text.replace(value, MASK)
    text = _URL_CREDENTIALS.sub(lambda m: f"{m.group('scheme')}{MASK}@", text)
    text = _BEARER.sub(lambda m: f"{m.group(1)} {MASK}", text)
    return _SECRET_ASSIGNMENT.sub(lambda m: f"{m.group('key')}{m.group('sep')}{m.group('quote')}{MASK}", text)


def summarize(error: str, secrets: Iterable[str] = (), limit: int = SUMMARY_CHARS) -> str:
    """The error's message without the stack trace, redacted and cut to `limit` characters."""
    lines = []
    for line in error.strip().splitlines():
        if line.startswith(("Stack Trace:", "Traceback", "  File ")):
            break
        if line.strip():
            lines.append(line.strip())
    text = redact(" ".join(lines) or error.strip(), secrets)
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass(frozen=True)
class Notice:
    """One message: what happened where, and where to look."""

    title: str
    environment: str
    summary: str
    job: str = ""
    step: str = ""
    run_id: str = ""
    link: str = ""
    kind: str = "run-failure"  # run-failure | rollout-alert | remediation-refused | drift

    def fields(self) -> list[tuple[str, str]]:
        named = [("Environment", self.environment), ("Job", self.job), ("Failing step", self.step)]
        return [(k, v) for k, v in named if v]


def webhook_payload(notice: Notice) -> dict[str, Any]:
    """The generic JSON body: every field of the notice, plus a source tag."""
    return {"source": "llm-cost-ops-ops", **asdict(notice)}


def slack_payload(notice: Notice) -> dict[str, Any]:
    """A Slack incoming-webhook message: fallback text plus blocks."""
    fields = [{"type": "mrkdwn", "text": f"*{name}*\n{value}"} for name, value in notice.fields()]
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": notice.title[:150]}},
    ]
    if fields:
        blocks.append({"type": "section", "fields": fields})
    blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": f"```{notice.summary}```"}})
    if notice.link:
        blocks.append(
            {"type": "context", "elements": [{"type": "mrkdwn", "text": f"<{notice.link}|Open the run>"}]}
        )
    return {"text": f"{notice.title}: {notice.summary}"[:3000], "blocks": blocks}
