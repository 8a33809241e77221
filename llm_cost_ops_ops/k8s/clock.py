"""One clock per operation.

The engine, teardown and waits take a monotonic `clock` (deadlines) and a `sleeper`; the times the
cluster keeps (a Lease's acquire and renew times, a release's or teardown's start and finish) are
that same clock read as UTC wall time, so a test that injects a clock moves them all together.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta


def utc_now() -> datetime:
    return datetime.now(UTC)


def wall_clock(clock: Callable[[], float]) -> Callable[[], datetime]:
    """UTC wall time advancing with `clock`: anchored to the real time once, at this call."""
    anchor_wall, anchor = utc_now(), clock()
    return lambda: anchor_wall + timedelta(seconds=clock() - anchor)


def iso_seconds(moment: datetime) -> str:
    """A release record's timestamp: ISO 8601 to the second, with its UTC offset."""
    return moment.isoformat(timespec="seconds")
