"""The import contracts in pyproject.toml ([tool.importlinter]) that `make lint` runs.

Cases:
- the project keeps every contract: no library imports Dagster or defs/, layers are one-way, no
  import loop between the modules of a library
- the contracts catch what they promise to: a library module importing dagster, a lower layer
  importing a higher one, and a loop closed only under TYPE_CHECKING (as storage/s3 <-> s3_upload
  once was) each break a contract of the same shape on a small package
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def run_lint_imports(cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"], cwd=cwd, env=env, capture_output=True, text=True, timeout=60
    )


def test_the_project_keeps_its_contracts() -> None:
    result = run_lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 kept, 0 broken" in result.stdout


CONFIG = """
[importlinter]
root_package = pkg
include_external_packages = True

[importlinter:contract:no-dagster]
name = no dagster
type = forbidden
source_modules = pkg.lib
forbidden_modules = dagster

[importlinter:contract:layers]
name = layers
type = layers
layers =
    pkg.wiring
    pkg.lib

[importlinter:contract:loops]
name = loops
type = acyclic_siblings
ancestors = pkg.lib
"""


def make_package(tmp_path: Path, files: dict[str, str]) -> Path:
    (tmp_path / ".importlinter").write_text(CONFIG)
    base = {"pkg/__init__.py": "", "pkg/lib/__init__.py": "", "pkg/wiring/__init__.py": ""}
    for name, text in {**base, **files}.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return tmp_path


@pytest.mark.parametrize(
    ("files", "broken"),
    [
        ({"pkg/lib/a.py": "import dagster\n"}, "no dagster BROKEN"),
        ({"pkg/lib/a.py": "from pkg.wiring import b\n", "pkg/wiring/b.py": ""}, "layers BROKEN"),
        (
            {
                "pkg/lib/s3.py": "from . import s3_upload\n",
                "pkg/lib/s3_upload.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from . import s3\n",
            },
            "loops BROKEN",
        ),
    ],
    ids=["library-imports-dagster", "lower-layer-imports-higher", "loop-under-type-checking"],
)
def test_each_contract_catches_its_violation(tmp_path: Path, files: dict[str, str], broken: str) -> None:
    (tmp_path / "dagster.py").write_text("")  # an external package for the forbidden contract to see
    root = make_package(tmp_path, files)
    result = run_lint_imports(root, env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"})
    assert result.returncode == 1, result.stdout + result.stderr
    assert broken in result.stdout
    assert "2 kept, 1 broken" in result.stdout
