"""What a notification says, with secrets removed, as a generic webhook body or a Slack message."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

from ..redaction import redact

SUMMARY_CHARS = 600


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
