"""Helm's own lint of an environment's chart, as findings of the schema check.

Only Helm environments are linted (a kustomize environment gets no findings). The chart is linted
with the environment's values, namespace and target Kubernetes version (so Chart.yaml's
`kubeVersion` is held to it); lint errors are errors, warnings are warnings, and Helm's
informational notes (`icon is recommended`) are left out.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import helm_python

from ..environments import EnvironmentSpec
from ..errors import RenderError
from .findings import Finding
from .helm import read_values

CHECK = "schema"
RULE = "helm-lint"
_SEVERITY: dict[int, Literal["error", "warning"]] = {3: "error", 2: "warning"}


def check_chart_lint(spec: EnvironmentSpec, root: Path) -> list[Finding]:
    """`helm lint` of the environment's chart with its values; [] for a kustomize environment."""
    if spec.renderer != "helm":
        return []
    chart = spec.chart_path(root)
    try:
        values = read_values(spec.name, spec.chart_values_path(root), root)
        report = helm_python.lint(
            chart, values, namespace=spec.namespace, kube_version=f"v{spec.kubernetes_version}.0"
        )
    except (RenderError, helm_python.HelmError) as exc:
        return [Finding(CHECK, RULE, spec.name, "-", spec.chart, f"helm lint could not run: {exc}")]
    findings = []
    for message in report.get("messages") or []:
        severity = _SEVERITY.get(int(message.get("severity", 0)))
        if severity is None:
            continue
        where = f"{spec.chart}/{message.get('path', '')}".rstrip("/")
        text = " ".join(str(message.get("error", "")).split())
        findings.append(Finding(CHECK, RULE, spec.name, "-", where, f"helm lint: {text}", severity))
    return findings
