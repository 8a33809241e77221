"""Finding PostgreSQL client programs (pg_dump, pg_dumpall, pg_restore, psql) that fit a server.

pg_dump refuses a server of a newer major version, and pg_restore cannot read archives from a
newer pg_dump, so a tool is chosen per server: among the installed versions (PG_BINDIR, then
/usr/lib/postgresql/<major>/bin, then $PATH), the oldest whose major version is at least the
server's, so an exact match wins over a newer client. The DSN's password goes to the child
process through PGPASSWORD, never on its command line (visible to every user in `ps`).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from psycopg import conninfo

from .. import process_env
from .backup_errors import PgToolMissing

_VERSION = re.compile(r"\(PostgreSQL\)\s+((\d+)(?:\.\d+)*)")


@dataclass(frozen=True)
class PgTool:
    path: Path
    version: str  # "15.20"
    major: int


def default_search_dirs() -> list[Path]:
    bindir = process_env.pg_bindir()
    dirs = [Path(bindir)] if bindir else []
    dirs += sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    return dirs


def tool_version(path: Path) -> PgTool | None:
    """The version `path --version` reports, or None when it does not run or says nothing usable."""
    try:
        out = subprocess.run([str(path), "--version"], capture_output=True, text=True, timeout=15).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    parsed = parse_version(out)
    return PgTool(path, *parsed) if parsed else None


def parse_version(text: str) -> tuple[str, int] | None:
    """("15.20", 15) from `pg_dump (PostgreSQL) 15.20 (Debian ...)`; None when absent."""
    match = _VERSION.search(text)
    if not match:
        return None
    return match[1], int(match[2])


def server_major(server_version_num: int) -> int:
    """10.0 and later: 150020 -> 15."""
    return server_version_num // 10000


def _installed(paths: Sequence[Path]) -> list[PgTool]:
    found: list[PgTool] = []
    seen: set[Path] = set()
    for path in paths:
        if path.is_file() and os.access(path, os.X_OK) and path.resolve() not in seen:
            seen.add(path.resolve())
            tool = tool_version(path)
            if tool is not None:
                found.append(tool)
    return found


def find_pg_tool(name: str, min_major: int, search: Sequence[Path] | None = None) -> PgTool:
    """The installed `name` best suited to a server of major version `min_major`.

    Raises PgToolMissing naming every version found when none is new enough.
    """
    found = _installed([d / name for d in (default_search_dirs() if search is None else search)])
    if search is None and not any(t.major >= min_major for t in found):
        # $PATH last, and only when needed: on Debian it is pg_wrapper, a Perl script slow to start.
        on_path = shutil.which(name)
        found += _installed([Path(on_path)]) if on_path else []
    fitting = sorted((t for t in found if t.major >= min_major), key=lambda t: t.major)
    if fitting:
        return fitting[0]
    have = ", ".join(f"{t.version} ({t.path})" for t in found) or "none"
    raise PgToolMissing(
        f"no {name} for a PostgreSQL {min_major} server: found {have}. An older {name} refuses a "
        f"newer server; install postgresql-client-{min_major} (or newer) or set PG_BINDIR"
    )


def libpq_target(dsn: str, database: str | None = None) -> tuple[str, dict[str, str]]:
    """The DSN without its password (for `-d`; `database` replaces its dbname), and the
    environment that carries the password to the child."""
    params = {k: str(v) for k, v in conninfo.conninfo_to_dict(dsn).items() if v is not None}
    password = params.pop("password", None)
    if database is not None:
        params["dbname"] = database
    env = process_env.child_environment({"PGPASSWORD": password} if password else None)
    return conninfo.make_conninfo(**params), env
