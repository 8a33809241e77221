"""Command line for the migration runner.

    python -m llm_cost_ops_ops.postgres.migrate info     [--dsn DSN] [--dir DIR]
    python -m llm_cost_ops_ops.postgres.migrate validate [--dsn DSN] [--dir DIR]
    python -m llm_cost_ops_ops.postgres.migrate run      [--dsn DSN] [--dir DIR] [--target V] [--dry-run]
    python -m llm_cost_ops_ops.postgres.migrate revert   --target V [--dsn DSN] [--dir DIR] [--dry-run]

The DSN defaults to $DATABASE_URL (as for sqlx-cli); the directory to the platform's migrations/.
Progress goes to stderr as it happens, the result to stdout.
Exit status 0 on success, 1 with a one-line message on stderr when the runner refuses or fails.
"""

from __future__ import annotations

import argparse
import sys

from .. import process_env
from .errors import PostgresError
from .migrator import DEFAULT_LOCK_TIMEOUT_SECONDS, Migrator
from .reports import MigrationStatus


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m llm_cost_ops_ops.postgres.migrate",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("command", choices=["info", "validate", "run", "revert"])
    parser.add_argument("--dsn", default=process_env.database_url(), help="default: $DATABASE_URL")
    parser.add_argument("--dir", default=None, help="migrations directory (default: the platform's)")
    parser.add_argument("--target", type=int, default=None, help="run: up to V; revert: down to V (0: all)")
    parser.add_argument("--dry-run", action="store_true", help="show what would be done; change nothing")
    parser.add_argument(
        "--lock-timeout",
        type=float,
        default=DEFAULT_LOCK_TIMEOUT_SECONDS,
        help="seconds to wait for another migrator's lock",
    )
    return parser


def _status_line(status: MigrationStatus) -> str:
    installed = status.installed_on.isoformat(timespec="seconds") if status.installed_on else "-"
    flags = ("reversible" if status.reversible else "") + (" no-transaction" if status.no_transaction else "")
    return f"{status.version}  {status.state:<8} {installed:<26} {status.description}  {flags.strip()}"


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if not args.dsn:
        print("no database: pass --dsn or set DATABASE_URL", file=sys.stderr)
        return 2
    if args.command == "revert" and args.target is None:
        print("revert needs --target (0 reverts everything reversible)", file=sys.stderr)
        return 2
    migrator = Migrator(
        args.dsn, args.dir, lock_timeout_seconds=args.lock_timeout, log=lambda m: print(m, file=sys.stderr)
    )
    try:
        if args.command == "info":
            lines = [_status_line(status) for status in migrator.info()]
        elif args.command == "validate":
            migrator.validate()
            lines = [f"{migrator.directory}: the ledger matches the migrations"]
        elif args.command == "run":
            lines = [migrator.run(args.target, dry_run=args.dry_run).summary()]
        else:
            lines = [migrator.revert(args.target, dry_run=args.dry_run).summary()]
    except PostgresError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
