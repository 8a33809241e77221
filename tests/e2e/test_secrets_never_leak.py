"""Secret-bearing bad values through the jobs, and nothing of them anywhere a person or a log reads.

Each job runs with `llm-cost-ops-ops run` (the documented CLI: the run queue, a daemon it starts,
its summary) against a fresh DAGSTER_HOME, as an operator would, with a DSN that
does not parse (a password with a space and `!`, an unterminated quote in key/value form, a bare
password), S3 access keys, a backup encryption key, an API token, and webhook URLs with
tokens in its environment. The run-failure notifier then sends each failed run to a local
webhook receiver. The test scans, for every secret and every word of a password:
- the runs' stdout and stderr;
- every file under DAGSTER_HOME: run and event-log storage (SQLite), compute logs;
- every notification body received;
and fails on any occurrence. Each notification carries the project's own one-line cause.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from llm_cost_ops_ops.defs.notify import NotifierResource, notification_definitions
from tests.webhook_receiver import WebhookReceiver

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

BIN = Path(sys.executable).parent

# job, its arguments, the DSN it gets. migrate_dev reads the DSN first thing; backup_dev retries for
# minutes before it fails, too long for this test (the same connect() and redaction serve it).
MIGRATE = ["migrate", "dev", "--config", "jobs/migrate/dev.yaml"]
RUNS = [
    ("migrate_dev", MIGRATE, "postgresql://leaky:S3cr3tPw! x@127.0.0.1:1/db"),
    ("migrate_dev", MIGRATE, "host=127.0.0.1 port=1 password='Unterm1nated Quot3d"),
    ("migrate_dev", MIGRATE, "BarePassw0rdInTheVariable"),
]
DSN_PIECES = ["S3cr3tPw", "Unterm1nated", "Quot3d", "BarePassw0rdInTheVariable"]
OTHER_SECRETS = {
    "LLM_COST_OPS_OPS_BACKUP_ACCESS_KEY_ID": "AKIALEAKYACCESSKEY",
    "LLM_COST_OPS_OPS_BACKUP_SECRET_ACCESS_KEY": "leakySecretAccessKey/with+chars",
    # A well-formed key (32 bytes, base64), so backups and drills go on to fail on their DSN.
    "LLM_COST_OPS_OPS_BACKUP_KEY": base64.b64encode(b"leaky-encryption-key-32-bytes!!!").decode(),
    "LLM_COST_OPS_OPS_SMOKE_API_TOKEN": "smoke-token-Lk9s",
}
WEBHOOK_TOKEN = "hookTok3nXYZ"
SLACK_TOKEN = "slackTok3nABC"


def _launch(job: str, args: list[str], dsn: str, home: Path, project_root: Path) -> str:
    env = {**os.environ, **OTHER_SECRETS, "DAGSTER_HOME": str(home), "LLM_COST_OPS_OPS_DEV_DATABASE_URL": dsn}
    for name in (
        "LLM_COST_OPS_OPS_ROOT",
        "LLM_COST_OPS_OPS_WEBHOOK_URL",
        "LLM_COST_OPS_OPS_SLACK_WEBHOOK_URL",
    ):
        env.pop(name, None)
    env.pop("LLM_COST_OPS_OPS_BACKUP_BUCKET", None)  # the local store: the DSN fails first anyway
    done = subprocess.run(
        [str(BIN / "llm-cost-ops-ops"), "run", *args],
        cwd=project_root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 1, f"{job} should fail on its bad DSN: {done.stdout}{done.stderr}"
    return done.stdout + done.stderr


def _notify(home: Path, receiver: WebhookReceiver, env_specs, monkeypatch) -> None:
    for name, value in OTHER_SECRETS.items():
        monkeypatch.setenv(name, value)
    (sensor,) = notification_definitions(env_specs).sensors
    notifier = NotifierResource(
        webhook_url=receiver.url(f"/generic?token={WEBHOOK_TOKEN}"),
        slack_webhook_url=receiver.url(f"/services/T0/B0/{SLACK_TOKEN}"),
    )
    with dg.DagsterInstance.from_config(str(home)) as instance:
        # The runs the commands started (a sensor may have requested a status refresh beside them).
        runs = [run for run in instance.get_runs() if run.job_name in {job for job, _, _ in RUNS}]
        assert sorted(run.job_name for run in runs) == sorted(job for job, _, _ in RUNS)
        for run in runs:
            event = instance.get_records_for_run(run.run_id, of_type=dg.DagsterEventType.RUN_FAILURE).records[
                0
            ]
            context = dg.build_run_status_sensor_context(
                sensor_name=sensor.name,
                dagster_instance=instance,
                dagster_run=run,
                dagster_event=event.event_log_entry.dagster_event,
                resources={"notifier": notifier},
            ).for_run_failure()
            sensor(context)


def test_no_secret_anywhere(project_root, env_specs, queued_dagster_home, monkeypatch):
    home = queued_dagster_home
    output = "".join(_launch(job, args, dsn, home, project_root) for job, args, dsn in RUNS)
    with WebhookReceiver() as receiver:
        _notify(home, receiver, env_specs, monkeypatch)
        bodies = receiver.bodies()
    secrets = [*DSN_PIECES, *OTHER_SECRETS.values(), WEBHOOK_TOKEN, SLACK_TOKEN]
    places = {"stdout/stderr": output, "notifications": json.dumps(bodies)}
    for path in home.rglob("*"):
        if path.is_file():
            places[str(path.relative_to(home))] = path.read_bytes().decode("utf-8", "replace")
    assert any("compute_logs" in place or place.endswith((".out", ".err")) for place in places), places.keys()
    leaks = [
        f"{secret!r} in {place}" for place, text in places.items() for secret in secrets if secret in text
    ]
    assert not leaks, leaks

    generic = [body for body in bodies if "summary" in body]
    assert len(generic) == len(RUNS)
    for body in generic:
        summary = body["summary"]
        assert "\n" not in summary
        # The project's own error, not psycopg's text the cause chain carried.
        assert summary.startswith("llm_cost_ops_ops.postgres.errors.InvalidDsn: "), summary
        assert "***" in summary, summary
