"""Argument parsing for `llm-cost-ops-ops` and the one-line errors it exits with."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .. import process_env
from ..errors import OpsError
from ..paths import project_root
from ..redaction import redact


def _job_name(operation: str, environment: str | None) -> str:
    return f"{operation}_{environment}" if environment else operation


def _tag(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"--tag {text!r}: expected KEY=VALUE")
    return key, value


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="llm-cost-ops-ops",
        description="Operate the LLM Cost Ops platform through the Dagster instance at DAGSTER_HOME.",
    )
    commands = root.add_subparsers(dest="command", required=True)
    run = commands.add_parser(
        "run",
        help="submit a job's run to the instance, follow it, print its summary",
        description="Submit OPERATION_ENV (e.g. `run deploy dev`) or a job named in full (`run "
        "render_and_check`) to the run queue of the instance at DAGSTER_HOME, follow it to its end "
        "and print a summary. Starts a Dagster daemon for the duration when none is running.",
    )
    run.add_argument("operation", help="deploy, rollback, migrate, backup, restore_drill, ... or a job name")
    run.add_argument("environment", nargs="?", help="dev, staging, prod (omit for a job named in full)")
    run.add_argument(
        "-c", "--config", action="append", type=Path, default=[], help="run config YAML (repeatable)"
    )
    run.add_argument("--partition", help="the partition (a day, YYYY-MM-DD, for backups)")
    run.add_argument("--tag", action="append", type=_tag, default=[], help="extra run tag KEY=VALUE")
    run.add_argument("-v", "--verbose", action="store_true", help="print the Dagster event log as it comes")
    run.add_argument(
        "-w",
        "--workspace",
        type=Path,
        default=None,
        help="workspace file (default: the project's workspace.yaml)",
    )
    run.add_argument(
        "--ui-url",
        default=process_env.dagster_url(),
        help="the Dagster UI for run links (LLM_COST_OPS_OPS_DAGSTER_URL; default %(default)s)",
    )
    dev = commands.add_parser("dev", help="the Dagster UI and daemon (dagster dev) that stop cleanly")
    dev.add_argument("-w", "--workspace", type=Path, default=None)
    dev.add_argument("--host", default="127.0.0.1")
    dev.add_argument("--port", default="3000")
    return root


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    workspace = (args.workspace or project_root() / "workspace.yaml").resolve()
    if not process_env.dagster_home():
        print(
            "DAGSTER_HOME is not set: point it at the instance directory "
            f"(export DAGSTER_HOME={project_root() / 'dagster_home'}; the make targets set it)",
            file=sys.stderr,
        )
        return 2
    try:
        if args.command == "dev":
            from .dev import run_dev

            return run_dev(workspace, args.host, args.port)
        from .run import RunCommand, RunRequest

        partition = {"dagster/partition": args.partition} if args.partition else {}
        request = RunRequest(
            job_name=_job_name(args.operation, args.environment),
            workspace=workspace,
            config_files=list(args.config),
            tags={**dict(args.tag), **partition},
            ui_url=args.ui_url,
            verbose=args.verbose,
        )
        return RunCommand(request).execute()
    except OpsError as exc:
        print(redact(f"error: {exc}"), file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
