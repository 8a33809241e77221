"""Per-environment manifest-bundle assets and their blocking checks.

One asset per environment (`dev_manifests`, `staging_manifests`, `prod_manifests`) rather than one
asset with static partitions: each environment has its own downstream (deploy, schema, backups),
its own checks and its own jobs, and a blocking check on one environment must never hold up another.
"""

from __future__ import annotations

import time

import dagster as dg

from ..bundles.checks import CHECKS
from ..bundles.findings import Finding, errors
from ..bundles.model import RenderedBundle
from ..bundles.reachability import matrix_table
from ..environments import EnvironmentSpec
from .keys import manifests_key
from .resources import PlatformManifests

MAX_TABLE_ROWS = 200


def _objects_table(bundle: RenderedBundle) -> str:
    rows = ["| kind | namespace | name | source |", "|---|---|---|---|"]
    rows += [
        f"| {o.kind} | {o.namespace or '-'} | {o.name} | {o.source or 'source unknown'} |"
        for o in bundle.objects
    ]
    return "\n".join(rows)


def _findings_table(findings: list[Finding]) -> str:
    rows = ["| severity | rule | object | field | message |", "|---|---|---|---|---|"]
    for f in findings[:MAX_TABLE_ROWS]:
        message = f.message.replace("|", "\\|")
        rows.append(f"| {f.severity} | {f.rule} | {f.object_ref} | `{f.field}` | {message} |")
    if len(findings) > MAX_TABLE_ROWS:
        rows.append(f"| | | | | … {len(findings) - MAX_TABLE_ROWS} more |")
    return "\n".join(rows)


def _result(findings: list[Finding], extra: dict | None = None) -> dg.AssetCheckResult:
    failed = errors(findings)
    metadata: dict = {
        "errors": len(failed),
        "warnings": len(findings) - len(failed),
        "rules_broken": sorted({f.rule for f in failed}),
        **(extra or {}),
    }
    if findings:
        metadata["findings"] = dg.MetadataValue.md(_findings_table(findings))
    description = str(failed[0]) if failed else None
    if len(failed) > 1:
        description = f"{description} (and {len(failed) - 1} more)"
    return dg.AssetCheckResult(
        passed=not failed, severity=dg.AssetCheckSeverity.ERROR, metadata=metadata, description=description
    )


def _bundle_check(spec: EnvironmentSpec, name: str) -> dg.AssetChecksDefinition:
    check = CHECKS[name]

    @dg.asset_check(asset=manifests_key(spec.name), name=name, blocking=True, description=check.description)
    def _check(bundle: RenderedBundle, manifests: PlatformManifests) -> dg.AssetCheckResult:
        # The run's environments.yaml (a `project_dir` override included), the one it rendered with.
        run_spec = manifests.run_environment(spec)
        findings = check.run(bundle, run_spec, manifests.root)
        extra = {"kubernetes_version": run_spec.kubernetes_version} if name == "schema" else None
        return _result(findings, extra)

    return _check


def _rendered_from(spec: EnvironmentSpec) -> str:
    if spec.renderer == "helm":
        values = spec.chart_values or f"{spec.chart}/values-{spec.name}.yaml"
        return f"the chart `{spec.chart}` with `{values}` rendered with Helm's SDK"
    return f"`{spec.overlay}` rendered with kustomize"


def bundle_definitions(spec: EnvironmentSpec) -> dg.Definitions:
    """The bundle asset of one environment and its blocking checks (schema, policy, contract,
    references)."""

    @dg.asset(
        key=manifests_key(spec.name),
        group_name=spec.name,
        kinds={"kubernetes", spec.renderer},
        tags={"env": spec.name},
        io_manager_key="bundle_io_manager",
        description=(
            f"The {spec.name} platform bundle: {_rendered_from(spec)} into namespace "
            f"`{spec.namespace}`, stored content-addressed by its sha256 digest."
        ),
    )
    def _bundle(manifests: PlatformManifests) -> dg.Output[RenderedBundle]:
        started = time.perf_counter()
        run_spec = manifests.run_environment(spec)
        bundle = manifests.render(spec.name)
        return dg.Output(
            bundle,
            metadata={
                "digest": bundle.digest,
                "namespace": run_spec.namespace,
                "object_count": len(bundle.objects),
                "objects_by_kind": bundle.counts_by_kind(),
                "images": bundle.images(),
                "kustomize_warnings": list(bundle.warnings),
                "render_seconds": round(time.perf_counter() - started, 3),
                "objects": dg.MetadataValue.md(_objects_table(bundle)),
                "network_reachability": dg.MetadataValue.md(matrix_table(bundle)),
            },
        )

    return dg.Definitions(assets=[_bundle], asset_checks=[_bundle_check(spec, name) for name in CHECKS])
