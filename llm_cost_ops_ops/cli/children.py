"""How the CLI starts the Dagster processes it owns: each in its own process group with default
signal handlers (a background `dagster dev` otherwise ignores SIGTERM), ended by the kernel when
the CLI dies, so stopping the group stops everything it started."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys

_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """SIGTERM this process when its parent dies (Linux; elsewhere nothing)."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def own_group_dying_with_parent() -> None:
    """A Popen preexec_fn: a new process group, default SIGINT/SIGTERM, death with the parent."""
    os.setpgrp()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_DFL)
    die_with_parent()
