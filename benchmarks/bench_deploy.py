"""The prod bundle on the API-server test double: first deploy and no-op redeploy.

Ours: dry-run of the whole bundle, server-side apply in waves, waits, prune, release ledger.
Baseline, in the same run: `kubectl apply --server-side` of the same bundle (no waits, no dry-run
gate, no ledger), first and again. Requests are counted by the server; discovery requests
(/api, /apis, /version) are counted apart. The headline figure is the last line.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from kubernetes import client

from llm_cost_ops_ops.bundles.render import kubectl_binary, render_overlay
from llm_cost_ops_ops.environments import load_environments
from llm_cost_ops_ops.k8s.client import Kube
from llm_cost_ops_ops.k8s.engine import DeployOptions
from llm_cost_ops_ops.k8s.releases import ReleaseRequest, execute_release
from llm_cost_ops_ops.k8s.wait import WaitTiming
from llm_cost_ops_ops.paths import project_root
from tests.k8s_double import ApiServer, ControllerSimulator

WRITES = {"POST", "PUT", "DELETE"}


def _tally(server: ApiServer) -> dict[str, int]:
    tally: Counter[str] = Counter()
    for method, path, query in server.requests:
        # /api, /apis, /version and /apis/<group>/<version>: discovery, not object reads.
        discovery = path.count("/") <= 3 and "namespaces" not in path
        dry_run = "dryRun" in str(query)
        if discovery and method == "GET":
            tally["discovery"] += 1
        elif method == "GET":
            tally["reads"] += 1
        elif method == "PATCH" and dry_run:
            tally["dry-runs"] += 1
        elif method in WRITES or method == "PATCH":
            tally["writes"] += 1
    return {k: tally[k] for k in ("discovery", "reads", "dry-runs", "writes")}


def _ours(server: ApiServer, bundle, namespace: str, run_id: str) -> tuple[float, dict[str, int], dict]:
    kube = Kube(client.ApiClient(server.client_configuration()))
    options = DeployOptions(rollout=WaitTiming(60, 0.05), database=WaitTiming(60, 0.05))
    server.reset_counters()
    started = time.perf_counter()
    result, _ = execute_release(kube, ReleaseRequest.for_bundle(bundle, namespace, run_id, options))
    return time.perf_counter() - started, _tally(server), result.counts()


def _kubectl(server: ApiServer, kubeconfig: Path, bundle_file: Path) -> tuple[float, dict[str, int]]:
    server.reset_counters()
    started = time.perf_counter()
    subprocess.run(
        [
            kubectl_binary(),
            "--kubeconfig",
            str(kubeconfig),
            "apply",
            "--server-side",
            "--validate=false",
            "--field-manager",
            "kubectl-baseline",
            "-f",
            str(bundle_file),
        ],
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - started, _tally(server)


def main() -> None:
    root = project_root()
    spec = load_environments()["prod"]
    bundle = render_overlay("prod", spec.overlay_path(root), root=root)
    with tempfile.TemporaryDirectory() as tmp:
        bundle_file = Path(tmp) / "prod.yaml"
        # kubectl cannot apply a kind the cluster does not serve; the double has no ServiceMonitor CRD.
        bundle_file.write_text(
            "\n---\n".join(doc for doc in bundle.text.split("\n---\n") if "kind: ServiceMonitor" not in doc)
        )
        print(f"prod bundle: {len(bundle.objects)} objects")
        with ApiServer() as server, ControllerSimulator(server).run_in_background(0.01):
            first_s, first, counts = _ours(server, bundle, spec.namespace, "bench-1")
            noop_s, noop, noop_counts = _ours(server, bundle, spec.namespace, "bench-2")
        with ApiServer() as server, ControllerSimulator(server).run_in_background(0.01):
            kubeconfig = server.kubeconfig(Path(tmp) / "kubeconfig")
            k_first_s, k_first = _kubectl(server, kubeconfig, bundle_file)
            k_again_s, k_again = _kubectl(server, kubeconfig, bundle_file)
    print(f"ours, first deploy:   {first_s:.2f} s  requests {first}  outcomes {counts}")
    print(f"ours, no-op redeploy: {noop_s:.2f} s  requests {noop}  outcomes {noop_counts}")
    print(f"kubectl apply --server-side, first: {k_first_s:.2f} s  requests {k_first}")
    print(f"kubectl apply --server-side, again: {k_again_s:.2f} s  requests {k_again}")
    objects = len(bundle.objects)
    print(f"no-op redeploy reads per object (without discovery): {noop['reads'] / objects:.2f}")
    print(f"no-op redeploy / kubectl re-apply wall time: {noop_s / k_again_s:.2f}")
    print(f"no-op redeploy writes: {noop['writes']}")
    sys.exit(0)


if __name__ == "__main__":
    main()
