"""Render errors carry no Secret value (issue 19).

Cases:
- two Secrets that collide (one with an explicit namespace) make kustomize print both as JSON,
  `stringData` and `data` included: the RenderError names the conflict and carries none of the
  values, nor the base64-decoded `data`;
- a secretGenerator literal quoted in an error is masked; text without secrets passes unchanged.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from llm_cost_ops_ops.bundles.render import render_overlay
from llm_cost_ops_ops.bundles.render_errors import redact_render_error
from llm_cost_ops_ops.errors import RenderError

pytestmark = pytest.mark.unit

SECRETS = ("TopSecretPw1", "OtherSecret2", "c2VjcmV0LWFwaS1rZXktdmFsdWU=", "secret-api-key-value")


def _collision(directory: Path) -> Path:
    (directory / "kustomization.yaml").write_text("namespace: demo\nresources: [a.yaml, b.yaml]\n")
    (directory / "a.yaml").write_text(
        "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\n"
        'stringData: {DATABASE_URL: "postgresql://u:TopSecretPw1@db/x"}\n'
        "data: {API_KEY: c2VjcmV0LWFwaS1rZXktdmFsdWU=}\n"
    )
    (directory / "b.yaml").write_text(
        "apiVersion: v1\nkind: Secret\nmetadata: {name: s, namespace: demo}\n"
        'stringData: {DATABASE_URL: "OtherSecret2"}\n'
    )
    return directory


def test_colliding_secrets_leave_no_value_in_the_error(tmp_path):
    overlay = _collision(tmp_path)
    with pytest.raises(RenderError) as raised:
        render_overlay("dev", overlay, root=tmp_path)
    message = str(raised.value)
    assert "ID conflict" in message and '"kind":"Secret"' in message
    assert '"DATABASE_URL":"***"' in message
    for secret in SECRETS:
        assert secret not in message


def test_generator_literals_are_masked(tmp_path):
    (tmp_path / "kustomization.yaml").write_text(
        "secretGenerator:\n- name: g\n  literals: [JWT_SECRET=GeneratedLiteral9]\n"
    )
    text = "error: something about GeneratedLiteral9 in g; nothing else"
    assert redact_render_error(text, tmp_path) == "error: something about *** in g; nothing else"
    assert redact_render_error("plain error", tmp_path) == "plain error"
