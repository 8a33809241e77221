"""The prod bundle on the real control plane (tests/control_plane/): first deploy and no-op redeploy,
ours against `kubectl apply --server-side` + `kubectl rollout status` on the same cluster, same run.

Both contestants reach the same end state: every object applied and every workload rolled out
(the real StatefulSet and Deployment controllers, KWOK's pods Ready). Each round deploys into fresh
namespaces (one for ours, one for kubectl); both are timed the same way (wall time, sequential).
Requests are counted from the API server's audit log: discovery (/api, /apis, /version, /openapi),
reads (get, list, watch), dry-runs, writes (the Lease counted apart), and per bundle object:
all requests, dry-runs, and the discovery requests with the most times one document was fetched
(1: discovery once per run). Figures are medians of BENCH_DEPLOY_ROUNDS (default 3). The
headline figure is the last line.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from benchmarks.contestants import executable, require
from llm_cost_ops_ops.bundles.render import kubectl_binary, render_overlay
from llm_cost_ops_ops.environments import load_environments
from llm_cost_ops_ops.k8s.client import Kube, load_api_client
from llm_cost_ops_ops.k8s.drift import drift_after_deploy
from llm_cost_ops_ops.k8s.engine import DeployOptions
from llm_cost_ops_ops.k8s.releases import ReleaseRequest, execute_release
from llm_cost_ops_ops.k8s.wait import WaitTiming
from llm_cost_ops_ops.paths import project_root
from tests.cluster.conftest import in_namespace
from tests.control_plane import binaries
from tests.control_plane.harness import AuditEvent, ControlPlane, running_control_plane

ROUNDS = int(os.environ.get("BENCH_DEPLOY_ROUNDS", "3"))
OPTIONS = DeployOptions(rollout=WaitTiming(120, 0.25), database=WaitTiming(120, 0.25))
KINDS = ("discovery", "reads", "dry-runs", "writes", "lease")
FIGURES = (*KINDS, "discovery_repeats")


def tally(events: list[AuditEvent]) -> dict[str, int]:
    counts: Counter[str] = Counter()
    documents: Counter[str] = Counter()
    for event in events:
        path = event.uri.split("?")[0]
        if event.resource == "leases" and event.verb not in ("get", "list", "watch"):
            counts["lease"] += 1
        elif not event.resource and (path.startswith(("/api", "/version", "/openapi"))):
            counts["discovery"] += 1
            documents[path] += 1
        elif event.dry_run:
            counts["dry-runs"] += 1
        elif event.is_write:
            counts["writes"] += 1
        else:
            counts["reads"] += 1
    # The most times one discovery document was fetched (1: discovery once per run).
    return {**{k: counts[k] for k in KINDS}, "discovery_repeats": max(documents.values(), default=0)}


def ours(plane: ControlPlane, bundle, run_id: str) -> tuple[float, dict[str, int]]:
    kube = Kube(load_api_client(str(plane.kubeconfig)))  # a new run: a new connection, as in Dagster
    mark = plane.audit_mark()
    started = time.perf_counter()
    request = ReleaseRequest.for_bundle(bundle, bundle.namespaces()[0], run_id, OPTIONS)
    result, release = execute_release(kube, request)
    # The run's drift check reads what the deploy measured (defs/drift.py): no request of its own.
    if drift_after_deploy(kube, bundle.environment, release, result) is None:
        raise SystemExit(f"{run_id}: the deploy measured no drift for its run's drift check to reuse")
    return time.perf_counter() - started, tally(plane.audit(mark))


def kubectl(plane: ControlPlane, bundle_file: Path, namespace: str) -> tuple[float, dict[str, int]]:
    base = [kubectl_binary(), "--kubeconfig", str(plane.kubeconfig)]
    mark = plane.audit_mark()
    started = time.perf_counter()
    subprocess.run(
        [*base, "apply", "--server-side", "--field-manager", "kubectl-baseline", "-f", str(bundle_file)],
        check=True,
        capture_output=True,
    )
    for workload in (
        "statefulset/postgres",
        "deployment/llm-cost-ops",
        "deployment/prometheus",
        "deployment/grafana",
    ):
        subprocess.run(
            [*base, "-n", namespace, "rollout", "status", workload, "--timeout=120s"],
            check=True,
            capture_output=True,
        )
    return time.perf_counter() - started, tally(plane.audit(mark))


def median_counts(samples: list[dict[str, int]]) -> dict[str, float]:
    return {k: statistics.median(s[k] for s in samples) for k in FIGURES}


def per_object(counts: dict[str, float], objects: int) -> str:
    """Requests per bundle object: all of them, the dry-runs, and the discovery requests."""
    total = sum(counts[k] for k in KINDS)
    return (
        f"{total / objects:.2f} requests per object ({total:g} / {objects} objects), "
        f"dry-runs per object {counts['dry-runs'] / objects:.2f}, discovery requests {counts['discovery']:g} "
        f"(each document at most {counts['discovery_repeats']:g}x)"
    )


def main() -> None:
    root = project_root()
    spec = load_environments()["prod"]
    # Both contestants up front: no first-deploy figure is printed without its kubectl baseline.
    executable("kubectl (the baseline)", require("kubectl (the baseline)", kubectl_binary), "make install")
    prod = render_overlay("prod", spec.overlay_path(root), root=root)
    require("the control plane (tests/control_plane)", binaries.build)
    figures: dict[str, list] = {name: [] for name in ("first", "noop", "k_first", "k_again")}
    with tempfile.TemporaryDirectory() as tmp, running_control_plane() as plane:
        for round_ in range(ROUNDS):
            bundle = in_namespace(prod, f"bench-ours-{round_}")
            figures["first"].append(ours(plane, bundle, f"bench-{round_}-1"))
            figures["noop"].append(ours(plane, bundle, f"bench-{round_}-2"))
            namespace = f"bench-kubectl-{round_}"
            bundle_file = Path(tmp) / f"{namespace}.yaml"
            # kubectl cannot apply a kind the cluster does not serve: no ServiceMonitor CRD here.
            text = in_namespace(prod, namespace).text
            bundle_file.write_text(
                "\n---\n".join(d for d in text.split("\n---\n") if "kind: ServiceMonitor" not in d)
            )
            figures["k_first"].append(kubectl(plane, bundle_file, namespace))
            figures["k_again"].append(kubectl(plane, bundle_file, namespace))
    objects = len(prod.objects)
    seconds = {k: statistics.median(s for s, _ in v) for k, v in figures.items()}
    counts = {k: median_counts([c for _, c in v]) for k, v in figures.items()}
    print(f"prod bundle: {objects} objects; real control plane; {ROUNDS} rounds (medians)")
    print(f"ours, first deploy to healthy:    {seconds['first']:.2f} s  requests {counts['first']}")
    print(f"ours, no-op redeploy:             {seconds['noop']:.2f} s  requests {counts['noop']}")
    print(f"kubectl apply + rollout status, first: {seconds['k_first']:.2f} s  requests {counts['k_first']}")
    print(f"kubectl apply + rollout status, again: {seconds['k_again']:.2f} s  requests {counts['k_again']}")
    for name in ("first", "noop"):
        by_kind = {k: round(counts[name][k] / objects, 2) for k in KINDS}
        print(f"ours, {name}: requests per object {by_kind}")
    print(f"ours, first deploy: {per_object(counts['first'], objects)}")
    print(f"ours, no-op redeploy: {per_object(counts['noop'], objects)}")
    print(f"kubectl, first apply: {per_object(counts['k_first'], objects)}")
    print(f"time to healthy, first deploy: ours / kubectl = {seconds['first'] / seconds['k_first']:.2f}")
    print(f"no-op redeploy / kubectl re-apply wall time: {seconds['noop'] / seconds['k_again']:.2f}")
    print(f"no-op redeploy writes: {counts['noop']['writes']:g}")
    sys.exit(0)


if __name__ == "__main__":
    main()
