"""The sharper rules of issue 13, each on hand-made input: moving image tags, placeholder secret
values, kustomize warnings attributed to the file that caused them, and the references check
failing closed.

Cases:
- moving: no tag, latest, `*-latest`, main/master/stable/edge/nightly, an environment's name (any
  case); pinned: version-like tags, commit SHAs, digests (even on a moving tag);
- placeholders (case-insensitive): changeme and its spellings inside a value, todo, xxx, example,
  password, secret, empty and blank values, a value equal to its key; real values are not;
- a warning about a deprecated field goes to every file of the tree using it (a base or a
  component, not the overlay), each once; a warning no file explains goes to the overlay;
- a rule that raises on an unexpected shape yields a `could-not-evaluate` error, the other rules
  still run, and the check does not pass.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from llm_cost_ops_ops.bundles import references
from llm_cost_ops_ops.bundles.findings import errors
from llm_cost_ops_ops.bundles.images import moving_reason
from llm_cost_ops_ops.bundles.model import ManifestObject, RenderedBundle
from llm_cost_ops_ops.bundles.secrets import is_placeholder
from llm_cost_ops_ops.bundles.tree import attribute_warnings, read_tree

pytestmark = pytest.mark.unit

ENVIRONMENTS = ("dev", "staging", "prod", "qa")


@pytest.mark.parametrize(
    ("image", "reason"),
    [
        ("ghcr.io/acme/api", "no tag"),
        ("ghcr.io/acme/api:latest", "'latest' moves"),
        ("ghcr.io/acme/api:LATEST", "'LATEST' moves"),
        ("ghcr.io/acme/api:1.4-latest", "'1.4-latest' moves"),
        ("registry:5000/acme/api:main", "'main' moves"),
        ("acme/api:master", "'master' moves"),
        ("acme/api:stable", "'stable' moves"),
        ("acme/api:edge", "'edge' moves"),
        ("acme/api:nightly", "'nightly' moves"),
        ("acme/api:staging", "environment's name"),
        ("acme/api:QA", "environment's name"),
        ("acme/api:feature-x", "not a version"),
    ],
)
def test_moving_tags(image, reason):
    found = moving_reason(image, ENVIRONMENTS)
    assert found is not None and reason in found


@pytest.mark.parametrize(
    "image",
    [
        "acme/api:1.4.2",
        "acme/api:v1.4",
        "postgres:16.6-alpine",
        "acme/api:2024.11.01",
        "acme/api:3f2c1ab",
        "acme/api:latest@sha256:" + "0" * 64,
        "registry:5000/acme/api@sha256:" + "f" * 64,
    ],
)
def test_pinned_images(image):
    assert moving_reason(image, ENVIRONMENTS) is None


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("password", "changeme"),
        ("jwt", "CHANGEME-jwt-secret"),
        ("token", "change_me"),
        ("token", "Change-Me"),
        ("token", "REPLACE_ME"),
        ("token", "todo"),
        ("token", "xxx"),
        ("token", "XXXXXX"),
        ("token", "example"),
        ("token", "Password"),
        ("token", "secret"),
        ("token", ""),
        ("token", "   "),
        ("API_KEY", "api_key"),
    ],
)
def test_placeholder_values(key, value):
    assert is_placeholder(key, value)


@pytest.mark.parametrize("value", ["s3cr3t-9f8e7d", "correct horse battery staple", "postgres://u:p@db/x"])
def test_real_values_are_not_placeholders(value):
    assert not is_placeholder("password", value)


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_warnings_go_to_the_file_using_the_field_each_once(tmp_path):
    _write(tmp_path / "base/kustomization.yaml", "resources: []\ncommonLabels: {team: a}\n")
    _write(tmp_path / "labels/kustomization.yaml", "kind: Component\ncommonLabels: {tier: b}\n")
    _write(tmp_path / "ov/kustomization.yaml", "resources: [../base]\ncomponents: [../labels]\n")
    tree = read_tree(tmp_path / "ov")
    stderr = (
        "# Warning: 'commonLabels' is deprecated. Please use 'labels' instead.\n"
        "# Warning: 'commonLabels' is deprecated. Please use 'labels' instead.\n"
        "# Warning: something else entirely\n"
    )
    assert attribute_warnings(stderr, tree, tmp_path) == (
        "base/kustomization.yaml: 'commonLabels' is deprecated. Please use 'labels' instead.",
        "labels/kustomization.yaml: 'commonLabels' is deprecated. Please use 'labels' instead.",
        "ov/kustomization.yaml: something else entirely",
    )


def _bundle(*bodies) -> RenderedBundle:
    return RenderedBundle.from_objects("staging", [ManifestObject(b) for b in bodies])


def test_a_rule_that_cannot_evaluate_is_an_error_not_a_pass(env_specs, monkeypatch):
    def broken_rule(bundle, spec):
        yield from ()
        raise ValueError("unknown selector operator 'Near'")

    monkeypatch.setattr(references, "RULES", (broken_rule, *references.RULES))
    findings = references.check_references(_bundle(), env_specs["staging"])
    failed = errors(findings)
    assert [(f.rule, f.object_ref) for f in failed] == [("could-not-evaluate", "-")]
    assert str(failed[0]) == (
        "[staging] -: broken_rule could not evaluate the bundle (ValueError: unknown selector operator "
        "'Near') (rule references/could-not-evaluate)"
    )


def test_an_unknown_selector_operator_fails_the_references_check(env_specs):
    pdb = {
        "apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
        "metadata": {"name": "api", "namespace": "llm-cost-ops-staging"},
        "spec": {"maxUnavailable": 1, "selector": {"matchExpressions": [{"key": "app", "operator": "Near"}]}},
    }  # fmt: skip
    deployment = {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "api", "namespace": "llm-cost-ops-staging"},
        "spec": {"template": {"metadata": {"labels": {"app": "api"}}, "spec": {"containers": []}}},
    }  # fmt: skip
    failed = errors(references.check_references(_bundle(deployment, pdb), env_specs["staging"]))
    unevaluated = [f for f in failed if f.rule == "could-not-evaluate"]
    assert [f.message.split(" ")[0] for f in unevaluated] == ["disruption_budgets_can_evict"]
    assert "unknown selector operator 'Near'" in unevaluated[0].message
