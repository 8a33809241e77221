"""What a benchmark could not run, said before any figure, and a non-zero exit instead of a headline.

A benchmark finds each contestant it promises up front with `require`: one that is missing is named
with the reason on stdout (`could not run: <contestant> (<why>)`) and the benchmark exits with
status 1, so no ratio is ever printed without one of its sides.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn, TypeVar

T = TypeVar("T")


def missing(contestant: str, why: str) -> NoReturn:
    print(f"could not run: {contestant} ({why})", flush=True)
    sys.exit(f"a contestant this benchmark promises is missing ({contestant}): no headline without it")


def require(contestant: str, find: Callable[[], T], *errors: type[Exception]) -> T:
    """`find()`, or exit through `missing` when it raises one of `errors` (default: any Exception)."""
    caught: tuple[type[Exception], ...] = errors or (Exception,)
    try:
        return find()
    except caught as exc:
        missing(contestant, str(exc) or type(exc).__name__)


def executable(contestant: str, path: str | Path | None, hint: str) -> str:
    """`path` when it names an executable (a bare name is looked up on PATH), else `missing`."""
    found = shutil.which(str(path)) if path else None
    if not found:
        missing(contestant, f"{path or 'no program'} not found; {hint}")
    return found
