"""Notifications (llm_cost_ops_ops.notify) against a local webhook receiver over real HTTP.

Cases:
- redaction: known secret values, secret-named environment variables, credentials in URLs, bearer
  tokens and KEY=value pairs whose key names a secret are masked; other text is kept;
- summaries drop the stack trace and are cut to length;
- the generic webhook body carries environment, job, step, summary, run id and link; the Slack body
  has fallback text, a header, the fields, the summary and the link;
- delivery: both formats reach their URLs; a 503 is retried and then delivered (attempts counted,
  no real sleeping); a destination that keeps failing raises NotificationFailed after the bounded
  attempts, naming its kind and host but never its URL (a Slack URL is a credential), after the
  other destination was still served; a 400 is not retried; no destination configured sends nothing.
"""

from __future__ import annotations

import socket

import pytest

from llm_cost_ops_ops.defs.notify import NotifierResource
from llm_cost_ops_ops.notify.message import Notice, slack_payload, summarize, webhook_payload
from llm_cost_ops_ops.notify.sender import Destination, NotificationFailed, Notifier
from llm_cost_ops_ops.redaction import environment_secrets, redact
from tests.webhook_receiver import WebhookReceiver

pytestmark = pytest.mark.unit

NOTICE = Notice(
    title="deploy_staging failed",
    environment="staging",
    summary="Deployment/llm-cost-ops-staging/llm-cost-ops rollout failed: CrashLoopBackOff",
    job="deploy_staging",
    step="staging_deployed",
    run_id="abc123",
    link="http://dagster.local/runs/abc123",
)


@pytest.fixture
def receiver():
    with WebhookReceiver() as running:
        yield running


def test_redaction():
    text = (
        "connect postgres://app:hunter22@postgres:5432/db failed; Authorization: Bearer eyJhbGciOi.x.y; "
        "JWT_SECRET=abcdef123 OPENAI_API_KEY: 'sk-live-123' password=pw12345 token=t0k3n; "
        "value s3cr3tvalue; rollout of llm-cost-ops failed"
    )
    out = redact(text, secrets=["s3cr3tvalue"], environ={})
    for secret in ("hunter22", "eyJhbGciOi", "abcdef123", "sk-live-123", "pw12345", "t0k3n", "s3cr3tvalue"):
        assert secret not in out, secret
    assert "postgres://app:***@postgres:5432/db" in out
    assert "JWT_SECRET=***" in out and "OPENAI_API_KEY: '***" in out
    assert out.endswith("rollout of llm-cost-ops failed")
    env = {"GRAFANA_ADMIN_PASSWORD": "gr4fana!", "HOME": "/root", "SLACK_WEBHOOK_URL": "https://hooks/x"}
    assert environment_secrets(env) == ["gr4fana!", "https://hooks/x"]


def test_summary_drops_the_stack_trace_and_is_bounded():
    error = 'RolloutFailed: pod x crashed; DATABASE_URL=postgres://u:p@h/d\n\nStack Trace:\n  File "x.py"'
    assert summarize(error) == "RolloutFailed: pod x crashed; DATABASE_URL=***"
    assert len(summarize("x" * 5000, limit=100)) == 100


def test_payloads():
    body = webhook_payload(NOTICE)
    assert body["source"] == "llm-cost-ops-ops"
    assert {k: body[k] for k in ("environment", "job", "step", "run_id", "link")} == {
        "environment": "staging",
        "job": "deploy_staging",
        "step": "staging_deployed",
        "run_id": "abc123",
        "link": "http://dagster.local/runs/abc123",
    }
    slack = slack_payload(NOTICE)
    assert slack["text"].startswith("deploy_staging failed: Deployment/")
    assert slack["blocks"][0] == {
        "type": "header",
        "text": {"type": "plain_text", "text": "deploy_staging failed"},
    }
    fields = [f["text"] for f in slack["blocks"][1]["fields"]]
    assert fields == ["*Environment*\nstaging", "*Job*\ndeploy_staging", "*Failing step*\nstaging_deployed"]
    assert "<http://dagster.local/runs/abc123|Open the run>" in str(slack["blocks"][-1])


def test_both_formats_are_delivered_and_transient_errors_retried(receiver):
    sleeps: list[float] = []
    notifier = Notifier(
        [Destination(receiver.url("/generic")), Destination(receiver.url("/slack"), "slack")],
        sleeper=sleeps.append,
    )
    receiver.fail_next(2, 503)
    assert notifier.send(NOTICE) == 2
    assert receiver.attempts == 4 and len(sleeps) == 2
    assert receiver.bodies("/generic")[0]["job"] == "deploy_staging"
    assert "blocks" in receiver.bodies("/slack")[0]


def test_bounded_attempts_then_a_failure_without_the_url(receiver):
    secret_url = receiver.url("/services/T000/B000/XXXXsecretXXXX")
    notifier = Notifier(
        [Destination(secret_url, "slack"), Destination(receiver.url("/generic"))],
        max_attempts=3,
        sleeper=lambda _: None,
    )
    receiver.fail_next(3, 502)
    with pytest.raises(NotificationFailed) as failed:
        notifier.send(NOTICE)
    message = str(failed.value)
    assert message == "slack destination at 127.0.0.1: HTTP 502 after 3 attempts"
    assert "XXXXsecretXXXX" not in message
    assert len(receiver.bodies("/generic")) == 1  # the other destination was still served
    receiver.fail_next(1, 400)
    with pytest.raises(NotificationFailed, match="refused the message: HTTP 400"):
        Notifier([Destination(secret_url)], sleeper=lambda _: None).send(NOTICE)
    assert receiver.attempts == 3 + 1 + 1


def test_unreachable_destination_names_only_the_host():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    notifier = Notifier(
        [Destination(f"http://127.0.0.1:{port}/hook/secret-path")], max_attempts=2, sleeper=lambda _: None
    )
    with pytest.raises(NotificationFailed) as failed:
        notifier.send(NOTICE)
    assert str(failed.value) == "webhook destination at 127.0.0.1: ConnectError after 2 attempts"


def test_resource_without_destinations_sends_nothing():
    assert NotifierResource().send(NOTICE) == 0
    assert NotifierResource(dagster_url="http://ui:3000/").run_link("r1") == "http://ui:3000/runs/r1"
