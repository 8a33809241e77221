"""How long the code location takes to load, against bare `import dagster`, and how long the webserver
takes to answer its first GraphQL query.

Measured in the same run, interleaved round by round (the machines are noisy: read the ratio):
- `python -c "import dagster"`: the floor every Dagster process pays;
- `python -c "import llm_cost_ops_ops.definitions"`: the definitions built, dagster import included;
- `dagster definitions validate -m llm_cost_ops_ops.definitions`: the CLI path (its own startup
  dominates);
- `dagster-webserver -m llm_cost_ops_ops.definitions` with a temporary DAGSTER_HOME: seconds from
  start until POST /graphql `{ version }` answers 200.
A contestant that cannot run is named with the reason and the benchmark exits non-zero.
The headline figure is the last line.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from benchmarks.contestants import executable
from llm_cost_ops_ops.paths import project_root

ROUNDS = 7
WEBSERVER_DEADLINE_SECONDS = 120
BIN = Path(sys.executable).parent


def seconds(args: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(args, check=True, capture_output=True, env=env, cwd=project_root())
    return time.perf_counter() - started


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def graphql_ok(url: str) -> bool:
    request = urllib.request.Request(
        url, data=json.dumps({"query": "{ version }"}).encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


def webserver_first_answer(env: dict[str, str]) -> float:
    port = free_port()
    url = f"http://127.0.0.1:{port}/graphql"
    args = [str(BIN / "dagster-webserver"), "-m", "llm_cost_ops_ops.definitions", "-h", "127.0.0.1"]
    started = time.perf_counter()
    process = subprocess.Popen(
        [*args, "-p", str(port)],
        env=env,
        cwd=project_root(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        while time.perf_counter() - started < WEBSERVER_DEADLINE_SECONDS:
            if process.poll() is not None:
                sys.exit(f"dagster-webserver exited with {process.returncode} before answering")
            if graphql_ok(url):
                return time.perf_counter() - started
            time.sleep(0.05)
        sys.exit(f"dagster-webserver did not answer {url} within {WEBSERVER_DEADLINE_SECONDS} s")
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def main() -> None:
    python = sys.executable
    for program in ("dagster", "dagster-webserver"):
        executable(f"{program} (CLI)", BIN / program, "make install")
    with tempfile.TemporaryDirectory() as home:
        (Path(home) / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
        env = {**os.environ, "DAGSTER_HOME": home}
        bare_cmd = [python, "-c", "import dagster"]
        load_cmd = [python, "-c", "import llm_cost_ops_ops.definitions"]
        validate_cmd = [str(BIN / "dagster"), "definitions", "validate", "-m", "llm_cost_ops_ops.definitions"]
        seconds(load_cmd, env)  # warm the bytecode caches once for both
        bare, load, validate = [], [], []
        for _ in range(ROUNDS):  # interleaved, so all see the same machine load
            bare.append(seconds(bare_cmd, env))
            load.append(seconds(load_cmd, env))
            validate.append(seconds(validate_cmd, env))
        webserver = webserver_first_answer(env)
    bare_median, load_median = statistics.median(bare), statistics.median(load)
    print(f"rounds: {ROUNDS} (median)")
    print(f"python -c 'import dagster': {bare_median:.3f} s")
    print(f"python -c 'import llm_cost_ops_ops.definitions': {load_median:.3f} s")
    print(
        f"dagster definitions validate -m llm_cost_ops_ops.definitions: {statistics.median(validate):.3f} s"
    )
    print(f"dagster-webserver start to first GraphQL answer: {webserver:.3f} s")
    print(f"definitions load / import dagster: {load_median / bare_median:.2f}")


if __name__ == "__main__":
    main()
