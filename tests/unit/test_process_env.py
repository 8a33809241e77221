"""The process environment is read in one module, llm_cost_ops_ops/process_env.py.

Cases:
- no other module of the package reads os.environ / os.getenv / os.environb (nor imports them
  from os), found by walking each module's syntax tree; the finder itself is shown to find them;
- the named readers: KUBECONFIG's list in kubectl's order, the UI URL's default, a variable set
  to "" counts as unset, a child's environment carries the extras without changing the parent's.
"""

from __future__ import annotations

import ast
import os
from pathlib import Path

from llm_cost_ops_ops import process_env

PACKAGE = Path(__file__).resolve().parents[2] / "llm_cost_ops_ops"
READERS = {"environ", "environb", "getenv", "getenvb", "putenv", "unsetenv"}


def environment_reads(source: str) -> list[int]:
    """Lines of `source` that touch os.environ / os.getenv (attribute or `from os import`)."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        attribute = isinstance(node, ast.Attribute) and node.attr in READERS
        if attribute and isinstance(node.value, ast.Name) and node.value.id == "os":
            lines.append(node.lineno)
        imported = isinstance(node, ast.ImportFrom) and node.module == "os"
        if imported and any(alias.name in READERS for alias in node.names):
            lines.append(node.lineno)
    return sorted(lines)


def test_the_finder_finds_each_way_of_reading():
    source = (
        "import os\nfrom os import getenv\n"
        "a = os.environ.get('X')\nb = os.getenv('Y')\nc = dict(os.environ)\nd = os.path.join('a')\n"
    )
    assert environment_reads(source) == [2, 3, 4, 5]


def test_only_process_env_reads_the_environment():
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE).as_posix()
        if relative == "process_env.py":
            continue
        offenders += [f"{relative}:{line}" for line in environment_reads(path.read_text())]
    assert offenders == [], "read the environment through llm_cost_ops_ops/process_env.py"
    assert environment_reads((PACKAGE / "process_env.py").read_text()), "process_env reads nothing"


def test_kubeconfig_lists_its_files_in_order(monkeypatch):
    monkeypatch.setenv("KUBECONFIG", os.pathsep.join(["/a/one", "", "/b/two"]))
    assert process_env.kubeconfig_paths() == ["/a/one", "/b/two"]
    monkeypatch.delenv("KUBECONFIG")
    assert process_env.kubeconfig_paths() == []


def test_an_empty_variable_is_unset(monkeypatch):
    monkeypatch.setenv("LLM_COST_OPS_OPS_DAGSTER_URL", "")
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "")
    assert process_env.dagster_url() == process_env.DEFAULT_DAGSTER_URL
    assert not process_env.in_kubernetes_pod()
    monkeypatch.setenv("LLM_COST_OPS_OPS_DAGSTER_URL", "https://dagster.example")
    assert process_env.dagster_url() == "https://dagster.example"


def test_a_child_environment_is_a_copy_with_extras(monkeypatch):
    monkeypatch.setenv("LLM_COST_OPS_OPS_ROOT", "/srv/ops")
    monkeypatch.delenv("PGPASSWORD", raising=False)
    child = process_env.child_environment({"PGPASSWORD": "pw"})
    assert child["LLM_COST_OPS_OPS_ROOT"] == "/srv/ops" and child["PGPASSWORD"] == "pw"
    assert "PGPASSWORD" not in os.environ
