"""The operator declaration: which environments this Dagster instance operates.

The one judge of whether automation that writes (rollout remediation, drift self-heal, and the
schedules of operations that write to a cluster, a database or the backup store) may be on for an
environment. It is declared, never inferred from what a kubeconfig happens to reach:

    LLM_COST_OPS_OPS_OPERATES=dev,staging     # comma-separated names from environments.yaml

Unset or empty, the instance operates nothing: a laptop's `make dev` against `dagster_home/` turns
no remediating sensor and no writing schedule on, whatever cluster its kubeconfig points at. The
production instance declares it in deploy/helm/values.yaml. Read when the code location loads.

`python -m llm_cost_ops_ops.operator_declaration` prints the declaration (what `make dev` shows first).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass

from . import process_env
from .errors import ConfigError

OPERATES_VARIABLE = "LLM_COST_OPS_OPS_OPERATES"

# Job `operation` tags whose runs write to a cluster, a database or the backup store. A schedule
# of any other operation (render, drift, smoke) reads only and keeps the status its file gives it.
WRITING_OPERATIONS = frozenset(
    {"deploy", "rollback", "migrate", "heal", "teardown", "backup", "restore", "restore_drill", "retention"}
)


@dataclass(frozen=True)
class OperatorDeclaration:
    """The environments this instance was declared the operator of."""

    environments: frozenset[str]

    def operates(self, environment: str) -> bool:
        return environment in self.environments

    def off_reason(self, environment: str, operation: str | None) -> str | None:
        """Why automation running `operation` in `environment` is off, or None when it may run.

        An operation not known to read only counts as writing."""
        if operation is not None and operation not in WRITING_OPERATIONS:
            return None
        if self.operates(environment):
            return None
        return (
            f"off: this Dagster instance is not the operator of {environment} "
            f"({OPERATES_VARIABLE}={','.join(sorted(self.environments)) or '<unset>'}); "
            f"add {environment} to {OPERATES_VARIABLE} on the instance that operates it"
        )

    def summary(self) -> str:
        """One line: what this instance operates and where that was declared."""
        if not self.environments:
            return (
                f"this Dagster instance operates no environment ({OPERATES_VARIABLE} is unset): rollout "
                "remediation, drift self-heal and writing schedules are off"
            )
        names = ", ".join(sorted(self.environments))
        return (
            f"this Dagster instance operates {names} ({OPERATES_VARIABLE}): rollout remediation, drift "
            "self-heal and writing schedules of these environments are on"
        )


def load_operator(
    environments: Collection[str], environ: Mapping[str, str] | None = None
) -> OperatorDeclaration:
    """The declaration in LLM_COST_OPS_OPS_OPERATES; raises ConfigError naming an unknown name."""
    raw = (process_env.environ() if environ is None else environ).get(OPERATES_VARIABLE, "")
    names = [name.strip() for name in raw.split(",") if name.strip()]
    unknown = [name for name in names if name not in environments]
    if unknown:
        raise ConfigError(
            f"{OPERATES_VARIABLE}: unknown environment {unknown[0]!r} "
            f"(environments.yaml has {', '.join(environments)})"
        )
    return OperatorDeclaration(frozenset(names))


NOBODY = OperatorDeclaration(frozenset())


if __name__ == "__main__":
    from .environments import load_environments

    try:
        print(load_operator(load_environments()).summary())
    except ConfigError as exc:
        raise SystemExit(f"error: {exc}") from None
