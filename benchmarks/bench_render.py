"""Render and check all three environments, against bare `kubectl kustomize` of the same overlays.

Both are measured in the same run (the machines are noisy: read the ratio). Both render the three
overlays the same way, one after the other: the baseline runs bare kustomize on each, as
`kubectl apply -k` users do; ours renders each overlay and runs the schema, policy, contract and
references checks. In the same rounds it times the Helm render of the three environments (the chart
with each values file, through Helm's Go SDK) against the kustomize render (our renderer, without
the checks), and prints both. Also times
`dagster definitions validate` for this code location and for an empty one (the CLI's own floor).
A contestant that cannot run is named with the reason and the benchmark exits non-zero.
The headline figure is the last line.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.contestants import executable, require
from llm_cost_ops_ops.bundles.contract import check_contract
from llm_cost_ops_ops.bundles.findings import errors
from llm_cost_ops_ops.bundles.policy import check_policy
from llm_cost_ops_ops.bundles.references import check_references
from llm_cost_ops_ops.bundles.render import kubectl_binary, render_overlay
from llm_cost_ops_ops.bundles.renderers import HelmRenderer, KustomizeRenderer
from llm_cost_ops_ops.bundles.schema import check_schema, ensure_known_kinds
from llm_cost_ops_ops.environments import load_environments
from llm_cost_ops_ops.errors import RenderError
from llm_cost_ops_ops.paths import project_root

ROUNDS = 7


def bare_kustomize(kubectl: str, overlays: list[Path]) -> float:
    started = time.perf_counter()
    for overlay in overlays:
        subprocess.run([kubectl, "kustomize", str(overlay)], check=True, capture_output=True)
    return time.perf_counter() - started


def render_and_check(root: Path) -> float:
    specs = load_environments(root / "environments.yaml")
    started = time.perf_counter()
    for env, spec in specs.items():
        bundle = render_overlay(env, spec.overlay_path(root), root=root)
        ensure_known_kinds(bundle, spec.kubernetes_version)
        findings = check_schema(bundle, spec.kubernetes_version)
        findings += check_policy(bundle, spec) + check_contract(bundle, spec)
        findings += check_references(bundle, spec)
        if errors(findings):
            sys.exit(f"{env} does not pass its checks: {errors(findings)[0]}")
    return time.perf_counter() - started


def render_only(root: Path, renderer: HelmRenderer | KustomizeRenderer) -> float:
    specs = load_environments(root / "environments.yaml")
    started = time.perf_counter()
    for spec in specs.values():
        renderer.render(spec, root)
    return time.perf_counter() - started


def validate_seconds(*target: str) -> float:
    started = time.perf_counter()
    subprocess.run(
        [str(Path(sys.executable).parent / "dagster"), "definitions", "validate", *target],
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - started


def main() -> None:
    root = project_root()
    kubectl = require("bare kubectl kustomize", kubectl_binary, RenderError)
    executable("dagster definitions validate", Path(sys.executable).parent / "dagster", "make install")
    overlays = [spec.overlay_path(root) for spec in load_environments().values()]
    cold = render_and_check(root)  # loads the JSON schemas once for the process
    # Loads the Go library once for the process.
    helm_cold = require("the Helm render (SDK)", lambda: render_only(root, HelmRenderer()))
    ours, bare, helm, kustomize = [], [], [], []
    for _ in range(ROUNDS):  # interleaved, so all see the same machine load
        bare.append(bare_kustomize(kubectl, overlays))
        ours.append(render_and_check(root))
        kustomize.append(render_only(root, KustomizeRenderer(kubectl)))
        helm.append(render_only(root, HelmRenderer()))
    ours_median, bare_median = statistics.median(ours), statistics.median(bare)
    helm_median, kustomize_median = statistics.median(helm), statistics.median(kustomize)
    with tempfile.TemporaryDirectory() as tmp:
        empty = Path(tmp) / "empty_defs.py"
        empty.write_text("import dagster as dg\n\ndefs = dg.Definitions()\n")
        empty_validate = validate_seconds("-f", str(empty))
        our_validate = validate_seconds("-m", "llm_cost_ops_ops.definitions")
    print(f"environments: {len(overlays)}, rounds: {ROUNDS} (median)")
    print(f"bare kubectl kustomize, sequential: {bare_median:.3f} s")
    print(
        f"render (sequential) + schema/policy/contract/references checks: {ours_median:.3f} s "
        f"(first round, loading schemas: {cold:.3f} s)"
    )
    print(
        f"render only, sequential: kustomize {kustomize_median:.3f} s, helm (SDK) {helm_median:.3f} s "
        f"(helm / kustomize: {helm_median / kustomize_median:.2f}; first helm render: {helm_cold:.3f} s)"
    )
    print(
        f"dagster definitions validate: {our_validate:.2f} s "
        f"(empty code location, the CLI's floor: {empty_validate:.2f} s)"
    )
    print(f"render+check / kustomize: {ours_median / bare_median:.2f}")


if __name__ == "__main__":
    main()
