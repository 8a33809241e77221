"""Every overlay renders to the golden bundle kept beside the manifests (manifests/golden/<env>.yaml).

A refactor of the tree (a Component, a moved patch) must leave the bundles byte for byte as they
were; a change meant to alter them regenerates the goldens with `make golden`, and the diff of the
golden files shows the reviewer what the bundles now hold.

Cases:
- each environment's bundle is byte-identical to its golden file, else the test fails with a short
  unified diff and the command that regenerates the goldens on purpose;
- every environment has a golden file and every golden file belongs to an environment;
- the golden file is the bundle itself: its sha256 is the digest the bundle carries;
- the comparison notices a change: an overlay edited in a copy of the tree renders a diff naming
  the changed object and field, and the comparison passes for the unedited render;
- a large difference is cut to DIFF_LINES lines of diff; a missing golden says how to make it.
"""

from __future__ import annotations

import difflib
import hashlib
import shutil
from pathlib import Path

import pytest

from llm_cost_ops_ops.bundles.model import RenderedBundle
from llm_cost_ops_ops.bundles.render import render_overlay

pytestmark = pytest.mark.unit

ENVIRONMENTS = ("dev", "staging", "prod")
REGENERATE = "make golden"
DIFF_LINES = 40


def golden_path(root: Path, environment: str) -> Path:
    return root / "manifests" / "golden" / f"{environment}.yaml"


def golden_difference(environment: str, rendered: str, golden: Path, root: Path) -> str:
    """An empty string when `rendered` is the golden's text, else a short unified diff (golden to
    rendered) that ends with how to regenerate the goldens on purpose."""
    shown = golden.relative_to(root)
    if not golden.is_file():
        return f"{environment}: no golden file {shown}; run `{REGENERATE}` and review what it wrote"
    expected = golden.read_text()
    if rendered == expected:
        return ""
    lines = list(
        difflib.unified_diff(
            expected.splitlines(keepends=True),
            rendered.splitlines(keepends=True),
            fromfile=str(shown),
            tofile=f"{environment} rendered now",
            n=2,
        )
    )
    more = len(lines) - DIFF_LINES
    shown_lines = "".join(lines[:DIFF_LINES]) + (f"... {more} more diff lines\n" if more > 0 else "")
    return (
        f"{environment}: the render differs from {shown} ({_changed_objects(environment, expected, rendered)}):\n"
        f"{shown_lines}"
        f"if the change is intended, run `{REGENERATE}` and commit the goldens with it"
    )


def _changed_objects(environment: str, expected: str, rendered: str) -> str:
    before = {o.ref: o.body for o in RenderedBundle.from_text(environment, expected).objects}
    after = {o.ref: o.body for o in RenderedBundle.from_text(environment, rendered).objects}
    changed = sorted(ref for ref in before.keys() | after.keys() if before.get(ref) != after.get(ref))
    return "objects changed: " + (", ".join(changed) or "none, only the text")


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_render_matches_its_golden_file(render_overlays, project_root, env):
    difference = golden_difference(
        env, render_overlays[env].text, golden_path(project_root, env), project_root
    )
    if difference:
        pytest.fail(difference, pytrace=False)


def test_every_environment_has_exactly_one_golden_file(env_specs, project_root):
    goldens = {path.stem for path in (project_root / "manifests" / "golden").glob("*.yaml")}
    assert goldens == set(env_specs)


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_golden_file_is_the_bundle_its_digest_names(render_overlays, project_root, env):
    golden = golden_path(project_root, env).read_bytes()
    assert render_overlays[env].digest == "sha256:" + hashlib.sha256(golden).hexdigest()


def test_an_edited_overlay_renders_a_diff_naming_the_change(project_root, env_specs, tmp_path):
    copy = tmp_path / "project"
    shutil.copytree(project_root / "manifests", copy / "manifests")
    overlay = copy / "manifests" / "overlays" / "dev" / "kustomization.yaml"
    text = overlay.read_text()
    assert "  - name: llm-cost-ops\n    count: 1\n" in text
    golden = golden_path(copy, "dev")
    unedited = render_overlay("dev", overlay.parent, root=copy)
    assert golden_difference("dev", unedited.text, golden, copy) == ""

    overlay.write_text(
        text.replace("  - name: llm-cost-ops\n    count: 1\n", "  - name: llm-cost-ops\n    count: 2\n")
    )
    edited = render_overlay("dev", overlay.parent, root=copy)

    difference = golden_difference("dev", edited.text, golden, copy)
    assert difference.startswith(
        "dev: the render differs from manifests/golden/dev.yaml "
        "(objects changed: Deployment/llm-cost-ops-dev/llm-cost-ops):\n"
    )
    assert "\n-  replicas: 1\n+  replicas: 2\n" in difference
    assert difference.endswith(f"run `{REGENERATE}` and commit the goldens with it")


def test_a_missing_golden_file_says_how_to_make_it(project_root, render_overlays, tmp_path):
    difference = golden_difference("dev", render_overlays["dev"].text, tmp_path / "dev.yaml", tmp_path)
    assert difference == f"dev: no golden file dev.yaml; run `{REGENERATE}` and review what it wrote"


def test_a_large_difference_is_cut_short(render_overlays, project_root):
    difference = golden_difference(
        "staging", render_overlays["dev"].text, golden_path(project_root, "staging"), project_root
    )
    lines = difference.splitlines()
    assert len(lines) == 1 + DIFF_LINES + 2
    assert lines[-2].startswith("... ") and lines[-2].endswith(" more diff lines")
