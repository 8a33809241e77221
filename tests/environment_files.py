"""Write an environment spec built in a test into a project tree's environments.yaml, so a run with
that tree as its `project_dir` reads the same spec the test's definitions were built from."""

from __future__ import annotations

from pathlib import Path

import yaml

from llm_cost_ops_ops.environments import EnvironmentSpec, load_environments


def write_environment(root: Path, spec: EnvironmentSpec) -> None:
    """Replace `spec.name` in root/environments.yaml with `spec` (every field spelled out)."""
    path = root / "environments.yaml"
    document = yaml.safe_load(path.read_text())
    document["environments"][spec.name] = spec.model_dump(mode="json", exclude={"name"})
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    assert load_environments(path)[spec.name] == spec, "the written spec does not read back the same"
