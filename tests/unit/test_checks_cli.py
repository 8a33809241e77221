"""`python -m llm_cost_ops_ops.bundles.checks`: the bundle checks from a shell.

Cases:
- a broken fixture rendered as staging prints its finding line (environment, object, field, rule)
  and a summary naming the overlay, and exits 1;
- a real environment with no error findings exits 0 and prints its warnings;
- an unknown environment, or an overlay that does not exist, is one error line and exit 2.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from llm_cost_ops_ops.bundles.checks import CHECKS, main

pytestmark = pytest.mark.unit

BROKEN = Path(__file__).resolve().parent.parent / "fixtures" / "broken"


def test_a_broken_overlay_prints_its_finding_and_fails(capsys):
    assert main(["staging", "--overlay", str(BROKEN / "policy-run-as-non-root")]) == 1
    out = capsys.readouterr().out.splitlines()
    assert (
        "error: [staging] Deployment/llm-cost-ops-staging/llm-cost-ops "
        "spec.template.spec.securityContext.runAsNonRoot: container llm-cost-ops may run as root: "
        "set runAsNonRoot: true (rule policy/run-as-non-root)"
    ) in out
    assert out[-1].endswith("policy-run-as-non-root as staging: 1 errors, 2 warnings")


def test_a_clean_environment_passes(capsys):
    assert main(["prod"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert all(line.startswith("warning: [prod] ") for line in out[:-1])
    assert out[-1] == "manifests/overlays/prod as prod: 0 errors, 2 warnings"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["qa"], "environments.yaml: no environment named 'qa'"),
        (["dev", "--overlay", "no/such/overlay"], "not found"),
    ],
)
def test_bad_input_is_one_line(capsys, argv, message):
    assert main(argv) == 2
    [line] = capsys.readouterr().out.splitlines()
    assert line.startswith("error: ") and message in line


def test_the_registry_names_the_four_blocking_checks():
    assert list(CHECKS) == ["schema", "policy", "contract", "references"]
