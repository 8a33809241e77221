"""The blocking checks of a rendered bundle, one registry for every caller.

The bundle assets run them as Dagster asset checks; `python -m llm_cost_ops_ops.bundles.checks`
runs them from a shell on an environment or on any overlay directory rendered as that environment
(a branch's overlay before it merges, or a broken fixture to see what a failure says):

    python -m llm_cost_ops_ops.bundles.checks staging --overlay tests/fixtures/broken/policy-run-as-non-root

It prints one line per finding (environment, Kind/namespace/name, field, message, check/rule) and
exits 1 when any is an error, 2 when the bundle cannot be rendered.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from ..environments import EnvironmentSpec
from .contract import check_contract
from .findings import Finding, errors
from .helm_lint import check_chart_lint
from .model import RenderedBundle
from .policy import check_policy
from .references import check_references
from .schema import check_schema


class Check(NamedTuple):
    run: Callable[[RenderedBundle, EnvironmentSpec, Path], list[Finding]]
    description: str


CHECKS: dict[str, Check] = {
    "schema": Check(
        # Helm's own lint of the chart the bundle came from belongs to the schema check.
        lambda bundle, spec, root: (
            check_schema(bundle, spec.kubernetes_version) + check_chart_lint(spec, root)
        ),
        "Every object validates strictly against the Kubernetes OpenAPI schema of the environment's "
        "target version; unserved APIs are errors, custom resources are listed as needing their CRD; "
        "for a Helm environment, Helm's own lint of the chart with its values.",
    ),
    "policy": Check(
        lambda bundle, spec, root: check_policy(bundle, spec),
        "Security posture and practices: non-root, read-only root, capabilities dropped, seccomp, "
        "requests and limits, API probes, pinned images, PDB, NetworkPolicies, no placeholder secrets, "
        "one service account per component, least-privilege RBAC.",
    ),
    "contract": Check(
        lambda bundle, spec, root: check_contract(bundle, spec),
        "The rendered bundle matches environments.yaml: namespace, replicas, resources, storage, "
        "autoscaling, disruption budget, monitoring and application settings; objects found by role.",
    ),
    "references": Check(
        lambda bundle, spec, root: check_references(bundle, spec),
        "What objects point at exists and the flows connect: Service selectors and ports, Ingress "
        "backends, HPA and PDB targets (and PDBs that allow an eviction), service accounts, RBAC "
        "subjects and roles, ConfigMap/Secret keys, hosts in connection settings, scrapes and "
        "ServiceMonitors, NetworkPolicy peers and the platform's flows, values kustomize dropped.",
    ),
}


def run_checks(bundle: RenderedBundle, spec: EnvironmentSpec, root: Path) -> list[Finding]:
    """Every finding of every check, in registry order."""
    return [finding for check in CHECKS.values() for finding in check.run(bundle, spec, root)]


def main(argv: list[str] | None = None) -> int:
    import argparse

    from ..environments import environment_named, load_environments
    from ..errors import OpsError
    from ..paths import project_root
    from .external_database import for_database_mode
    from .render import render_overlay
    from .renderers import render_environment
    from .schema import ensure_known_kinds

    parser = argparse.ArgumentParser(prog="python -m llm_cost_ops_ops.bundles.checks")
    parser.add_argument("environment", help="the environment whose contract the bundle is held to")
    parser.add_argument(
        "--overlay", type=Path, help="render this overlay directory instead of the environment's"
    )
    args = parser.parse_args(argv)
    root = project_root()
    try:
        path = root / "environments.yaml"
        spec = environment_named(load_environments(path), args.environment, path)
        if args.overlay:
            bundle = render_overlay(spec.name, args.overlay.resolve(), root=root)
        else:
            bundle = render_environment(spec, root)
        ensure_known_kinds(bundle, spec.kubernetes_version)
        bundle = for_database_mode(bundle, spec)
    except OpsError as exc:
        print(f"error: {exc}")
        return 2
    findings = run_checks(bundle, spec, root)
    for finding in findings:
        print(f"{finding.severity}: {finding}")
    failed = errors(findings)
    source = args.overlay or spec.overlay
    print(f"{source} as {spec.name}: {len(failed)} errors, {len(findings) - len(failed)} warnings")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
