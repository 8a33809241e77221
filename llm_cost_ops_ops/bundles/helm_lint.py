"""Helm's own lint of an environment's chart, as findings of the schema check.

Only Helm environments are linted (a kustomize environment gets no findings). The chart is linted
with the environment's values, namespace and target Kubernetes version; lint errors are errors,
warnings are warnings, and Helm's informational notes (`icon is recommended`) are left out.
Helm's lint does not hold Chart.yaml's `kubeVersion` to the target (only `helm install` would), so
this check does: a constraint the target does not meet, or one it cannot read, is an error.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

import helm_python
from packaging.version import InvalidVersion, Version

from ..config_yaml import read_yaml
from ..environments import EnvironmentSpec
from ..errors import ConfigError, RenderError
from .findings import Finding
from .helm import read_values

CHECK = "schema"
RULE = "helm-lint"
_SEVERITY: dict[int, Literal["error", "warning"]] = {3: "error", 2: "warning"}
_COMPARATOR = re.compile(r"^(>=|<=|!=|>|<|=)?v?(\d+(?:\.\d+){0,2})(?:-0)?$")
_OPERATORS = {
    ">=": Version.__ge__,
    "<=": Version.__le__,
    ">": Version.__gt__,
    "<": Version.__lt__,
    "!=": Version.__ne__,
    "=": Version.__eq__,
}


def kube_version_admits(constraint: str, target: str) -> bool:
    """Whether a Chart.yaml `kubeVersion` (comparators joined by spaces or commas, alternatives by
    `||`) admits the target `1.30`. Raises ValueError for a constraint it cannot read."""
    wanted = Version(f"{target}.0")
    for alternative in constraint.split("||"):
        joined = re.sub(r"(>=|<=|!=|>|<|=)\s+", r"\1", alternative.strip())
        comparators = [c for c in re.split(r"[\s,]+", joined) if c]
        if not comparators:
            raise ValueError(f"empty constraint in {constraint!r}")
        results = []
        for comparator in comparators:
            match = _COMPARATOR.match(comparator)
            if match is None:
                raise ValueError(f"cannot read {comparator!r}")
            try:
                results.append(_OPERATORS[match[1] or "="](wanted, Version(match[2])))
            except InvalidVersion as exc:
                raise ValueError(str(exc)) from None
        if all(results):
            return True
    return False


def _kube_version_findings(spec: EnvironmentSpec, chart: Path) -> list[Finding]:
    where = f"{spec.chart}/Chart.yaml:kubeVersion"
    try:
        constraint = str((read_yaml(chart / "Chart.yaml") or {}).get("kubeVersion") or "")
    except (ConfigError, AttributeError) as exc:
        return [Finding(CHECK, "chart-kube-version", spec.name, "-", where, f"cannot read Chart.yaml: {exc}")]
    if not constraint:
        return []
    try:
        admitted = kube_version_admits(constraint, spec.kubernetes_version)
    except ValueError as exc:
        message = f"kubeVersion {constraint!r} cannot be judged ({exc})"
        return [Finding(CHECK, "chart-kube-version", spec.name, "-", where, message)]
    if admitted:
        return []
    message = (
        f"kubeVersion {constraint!r} does not admit the environment's target Kubernetes "
        f"{spec.kubernetes_version} (kubernetes_version in environments.yaml)"
    )
    return [Finding(CHECK, "chart-kube-version", spec.name, "-", where, message)]


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
    findings = _kube_version_findings(spec, chart)
    for message in report.get("messages") or []:
        severity = _SEVERITY.get(int(message.get("severity", 0)))
        if severity is None:
            continue
        where = f"{spec.chart}/{message.get('path', '')}".rstrip("/")
        text = " ".join(str(message.get("error", "")).split())
        findings.append(Finding(CHECK, RULE, spec.name, "-", where, f"helm lint: {text}", severity))
    return findings
