"""A failed migration, told as `file:line:column: PostgreSQL's message`.

PostgreSQL reports where a statement failed as `statement_position`: a 1-based character offset
into the query string it received. The runner sends each file exactly as it is on disk, so the
offset is an offset into the file (in bytes rather than characters on a SQL_ASCII server).
"""

from __future__ import annotations

from collections.abc import Callable

import psycopg

from .errors import MigrationFailed
from .source import Migration

_SNIPPET = 100


def line_column(text: str, position: int, *, in_bytes: bool = False) -> tuple[int, int]:
    """1-based line and column of a 1-based `position` in `text` (columns count characters)."""
    if in_bytes:
        text = text.encode("utf-8")[: position - 1].decode("utf-8", errors="replace")
        position = len(text) + 1
    before = text[: position - 1]
    line_start = before.rfind("\n") + 1
    return before.count("\n") + 1, len(before) - line_start + 1


def migration_failure(
    migration: Migration,
    exc: psycopg.Error,
    *,
    redact: Callable[[str], str],
    server_encoding: str = "UTF8",
) -> MigrationFailed:
    """The MigrationFailed for `exc` raised by `migration`'s SQL, messages passed through `redact`."""
    diag = exc.diag
    pg_message = redact(diag.message_primary or str(exc).strip().splitlines()[0])
    shown = pg_message
    sqlstate = diag.sqlstate or ""
    line = column = None
    where = str(migration.path)
    if diag.statement_position and diag.statement_position.isdigit():
        line, column = line_column(
            migration.sql, int(diag.statement_position), in_bytes=server_encoding == "SQL_ASCII"
        )
        where = f"{where}:{line}:{column}"
        source_line = migration.sql.split("\n")[line - 1].strip()
        if source_line:
            shown += f" (at: {redact(source_line[:_SNIPPET])})"
    extras = [
        f"{label}: {redact(value)}"
        for label, value in (
            ("DETAIL", diag.message_detail),
            ("HINT", diag.message_hint),
            ("CONTEXT", diag.context),
        )
        if value
    ]
    effect = (
        "not recorded in _sqlx_migrations; as a -- no-transaction migration, statements before the "
        "failing one may have taken effect"
        if migration.no_transaction
        else "rolled back and not recorded in _sqlx_migrations"
    )
    message = "; ".join(
        [
            f"{where}: migration {migration.version} failed: {shown} [SQLSTATE {sqlstate}]",
            *extras,
            f"{effect}; later migrations were not applied",
        ]
    ).replace("\n", " ")
    return MigrationFailed(
        message,
        version=migration.version,
        file=str(migration.path),
        line=line,
        column=column,
        sqlstate=sqlstate,
        pg_message=pg_message,
    )
