"""Rendering overlays with kustomize into bundles (llm_cost_ops_ops.bundles.render).

Cases:
- every environment renders, into its own namespace only;
- kustomize prints no warnings for the real overlays;
- every object names the file under manifests/ it came from;
- the digest is stable across two renders and is the sha256 of the canonical text;
- origin annotations are stripped, other annotations are kept, empty annotations removed;
- errors, each a RenderError with one line naming the environment and the overlay or file:
  missing overlay, kustomize failure (bad resource path), invalid YAML in a resource file,
  duplicate objects (caught by kustomize, and across API versions by the parser),
  a document without kind (caught by kustomize, and by the parser), an unknown kind.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from llm_cost_ops_ops.bundles.render import ORIGIN_ANNOTATION, parse_rendered, render_overlay
from llm_cost_ops_ops.bundles.schema import ensure_known_kinds
from llm_cost_ops_ops.errors import RenderError

pytestmark = pytest.mark.unit

ENVIRONMENTS = ("dev", "staging", "prod")


def _write(directory: Path, files: dict[str, str]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (directory / name).write_text(text)
    return directory


def _kustomization(*resources: str) -> str:
    listed = "".join(f"  - {r}\n" for r in resources)
    return f"buildMetadata: [originAnnotations]\nresources:\n{listed}"


CONFIGMAP = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  a: b\n"


def _render_error(env: str, overlay: Path, root: Path) -> str:
    with pytest.raises(RenderError) as caught:
        render_overlay(env, overlay, root=root)
    return str(caught.value)


def _assert_one_line(message: str, env: str) -> None:
    assert "\n" not in message
    assert message.startswith(f"{env}: ")


# --- the real overlays -------------------------------------------------------------------------


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_environment_renders_into_its_namespace(render_overlays, env):
    bundle = render_overlays[env]
    assert bundle.environment == env
    assert len(bundle.objects) > 20
    assert bundle.namespaces() == [f"llm-cost-ops-{env}"]
    assert bundle.find("Namespace", f"llm-cost-ops-{env}") is not None


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_kustomize_prints_no_warnings(render_overlays, env):
    assert render_overlays[env].warnings == ()


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_object_names_its_source_file_under_manifests(render_overlays, project_root, env):
    for obj in render_overlays[env].objects:
        assert obj.source.startswith("manifests/"), obj.ref
        assert (project_root / obj.source).is_file(), f"{obj.ref}: {obj.source}"
    deployment = render_overlays[env].find("Deployment", "llm-cost-ops")
    assert deployment.source == "manifests/base/deployment.yaml"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_digest_is_stable_and_is_the_sha256_of_the_text(render_overlays, env_specs, project_root, env):
    first = render_overlays[env]
    second = render_overlay(env, env_specs[env].overlay_path(project_root), root=project_root)
    assert second.text == first.text
    assert second.digest == first.digest
    assert first.digest == "sha256:" + hashlib.sha256(first.text.encode()).hexdigest()


def test_environments_have_different_digests(render_overlays):
    assert len({bundle.digest for bundle in render_overlays.values()}) == 3


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_origin_annotations_are_stripped(render_overlays, env):
    bundle = render_overlays[env]
    assert ORIGIN_ANNOTATION not in bundle.text
    # Annotations that were only the origin disappear; real ones stay.
    assert "annotations" not in bundle.find("Deployment", "llm-cost-ops").body["metadata"]
    ingress = bundle.find("Ingress", "llm-cost-ops")
    assert ingress.body["metadata"]["annotations"] == {"nginx.ingress.kubernetes.io/ssl-redirect": "true"}


# --- errors ------------------------------------------------------------------------------------


def test_missing_overlay(tmp_path):
    message = _render_error("staging", tmp_path / "overlays" / "qa", tmp_path)
    _assert_one_line(message, "staging")
    assert message == "staging: overlay overlays/qa not found (no kustomization.yaml there)"


def test_kustomize_error_names_the_overlay_and_the_missing_file(tmp_path):
    overlay = _write(tmp_path / "broken", {"kustomization.yaml": _kustomization("missing.yaml")})
    message = _render_error("dev", overlay, tmp_path)
    _assert_one_line(message, "dev")
    assert message.startswith("dev: kustomize broken failed: ")
    assert "missing.yaml" in message
    # The absolute path of the overlay is shortened to the path under the root.
    assert str(overlay.resolve()) not in message


def test_invalid_yaml_in_a_resource_file(tmp_path):
    overlay = _write(
        tmp_path / "broken",
        {
            "kustomization.yaml": _kustomization("settings.yaml"),
            "settings.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\ndata: [unclosed\n",
        },
    )
    message = _render_error("prod", overlay, tmp_path)
    _assert_one_line(message, "prod")
    assert message.startswith("prod: kustomize broken failed: ")
    assert "settings.yaml" in message


def test_duplicate_objects_are_refused_by_kustomize(tmp_path):
    overlay = _write(
        tmp_path / "dup",
        {"kustomization.yaml": _kustomization("a.yaml", "b.yaml"), "a.yaml": CONFIGMAP, "b.yaml": CONFIGMAP},
    )
    message = _render_error("dev", overlay, tmp_path)
    _assert_one_line(message, "dev")
    assert message.startswith("dev: kustomize dup failed: ")
    assert "b.yaml" in message
    assert "already registered" in message


def test_duplicate_objects_across_api_versions_name_both_files(tmp_path):
    # kustomize keys objects by version too; the parser keys by group, so v1 and v2 of one
    # HorizontalPodAutoscaler are the same object applied twice.
    hpa = (
        "apiVersion: autoscaling/{version}\nkind: HorizontalPodAutoscaler\nmetadata:\n  name: api\n"
        "spec:\n  scaleTargetRef: {{kind: Deployment, name: api}}\n  maxReplicas: 2\n"
    )
    overlay = _write(
        tmp_path / "dup",
        {
            "kustomization.yaml": _kustomization("v1.yaml", "v2.yaml"),
            "v1.yaml": hpa.format(version="v1"),
            "v2.yaml": hpa.format(version="v2"),
        },
    )
    message = _render_error("staging", overlay, tmp_path)
    _assert_one_line(message, "staging")
    assert message == ("staging: duplicate object HorizontalPodAutoscaler/api in dup/v1.yaml and dup/v2.yaml")


def test_document_without_kind_is_refused_by_kustomize(tmp_path):
    overlay = _write(
        tmp_path / "nokind",
        {
            "kustomization.yaml": _kustomization("settings.yaml"),
            "settings.yaml": "apiVersion: v1\nmetadata:\n  name: a\ndata:\n  a: b\n",
        },
    )
    message = _render_error("dev", overlay, tmp_path)
    _assert_one_line(message, "dev")
    assert message.startswith("dev: kustomize nokind failed: ")
    assert "missing kind" in message
    assert "settings.yaml" in message


def test_document_without_kind_in_kustomize_output_names_its_file(tmp_path):
    text = (
        "apiVersion: v1\nmetadata:\n  name: a\n  annotations:\n"
        f"    {ORIGIN_ANNOTATION}: |\n      path: settings.yaml\n"
    )
    with pytest.raises(RenderError) as caught:
        parse_rendered("dev", text, tmp_path / "overlay", tmp_path)
    assert str(caught.value) == "dev: overlay/settings.yaml: object has no kind"


def test_document_that_is_not_a_mapping(tmp_path):
    with pytest.raises(RenderError) as caught:
        parse_rendered("dev", "- just\n- a list\n", tmp_path, tmp_path)
    assert str(caught.value) == "dev: document 0 is not a mapping"


def test_unknown_kind_names_the_object_and_its_file(tmp_path):
    overlay = _write(
        tmp_path / "custom",
        {
            "kustomization.yaml": _kustomization("widget.yaml"),
            "widget.yaml": "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w\n",
        },
    )
    bundle = render_overlay("prod", overlay, root=tmp_path)
    with pytest.raises(RenderError) as caught:
        ensure_known_kinds(bundle, "1.30")
    message = str(caught.value)
    _assert_one_line(message, "prod")
    assert "unknown kind example.com/v1 Widget (Widget/w) in custom/widget.yaml" in message
    assert "Kubernetes 1.30" in message
