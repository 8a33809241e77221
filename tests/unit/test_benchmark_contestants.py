"""A benchmark that cannot run a contestant it promises says which and why, and exits non-zero
without a headline (benchmarks/contestants.py).

Cases:
- bench-migrate without psql (nothing on PATH, PG_BINDIR pointing nowhere): one `could not run:`
  line naming the baseline and the missing program, status 1, no figure printed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_missing_baseline_is_named_and_fails(tmp_path: Path) -> None:
    env = {**os.environ, "PATH": str(tmp_path), "PG_BINDIR": str(tmp_path / "nowhere")}
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_migrate.py")],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert done.stdout.splitlines() == [
        f"could not run: psql -f (the baseline) ({tmp_path / 'nowhere' / 'psql'} not found; install postgresql-client)"
    ]
    assert "no headline without it" in done.stderr
