"""Where the control plane's binaries live, and building them there.

The binaries are built from this directory's Go module (`go.mod`/`go.sum`, `cmd/*/main.go`) into
`$XDG_CACHE_HOME/llm-cost-ops-ops/control-plane/<hash>/` (default `~/.cache/...`), where the hash
covers go.mod, go.sum and every main: only the first build on a machine, or a version bump, pays.
`LLM_COST_OPS_OPS_CONTROL_PLANE_DIR` points at a ready directory instead.

    python -m tests.control_plane.binaries        # build if missing, print the directory
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

MODULE = Path(__file__).resolve().parent
COMMANDS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")
DIR_ENV = "LLM_COST_OPS_OPS_CONTROL_PLANE_DIR"


def source_hash() -> str:
    digest = hashlib.sha256()
    files = [MODULE / "go.mod", MODULE / "go.sum", *sorted(MODULE.glob("cmd/*/main.go"))]
    for path in files:
        digest.update(path.relative_to(MODULE).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def cache_dir() -> Path:
    if os.environ.get(DIR_ENV):
        return Path(os.environ[DIR_ENV])
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "llm-cost-ops-ops" / "control-plane" / source_hash()


def missing() -> list[str]:
    directory = cache_dir()
    return [name for name in COMMANDS if not os.access(directory / name, os.X_OK)]


def binary(name: str) -> Path:
    """The path of one built command; raises with the command to build it when absent."""
    path = cache_dir() / name
    if not os.access(path, os.X_OK):
        raise FileNotFoundError(f"control plane binary {path} is missing: run `make control-plane`")
    return path


def build() -> Path:
    """Build every command into the cache directory unless all are there; returns the directory.

    Concurrent callers (parallel make, several test sessions) wait on one lock file, so a machine
    pays for one build, not one per caller.
    """
    target = cache_dir()
    if not missing():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.with_name(target.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not missing():
            return target
        return _build(target)


def _build(target: Path) -> Path:
    go = shutil.which("go")
    if go is None:
        raise SystemExit("make control-plane needs Go (1.26+) on PATH")
    staging = target.with_name(target.name + f".tmp-{os.getpid()}")
    staging.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "GOFLAGS": "-mod=readonly", "GOTOOLCHAIN": "local"}
    started = time.monotonic()
    print(f"building the control plane into {target} (first build on a machine: several minutes)", flush=True)
    try:
        subprocess.run(
            [go, "build", "-trimpath", "-ldflags=-s -w", "-o", f"{staging}/", "./cmd/..."],
            cwd=MODULE,
            env=env,
            check=True,
        )
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    print(f"control plane built in {time.monotonic() - started:.0f} s", flush=True)
    return target


if __name__ == "__main__":
    try:
        print(build())
    except subprocess.CalledProcessError as error:
        sys.exit(f"control plane build failed (exit {error.returncode})")
