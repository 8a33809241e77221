"""Where the project's data files live.

The project root holds `manifests/`, `environments.yaml`, `jobs/` and `schedules/`. A deployed
code location can point elsewhere with LLM_COST_OPS_OPS_ROOT.
"""

from pathlib import Path

from . import process_env


def project_root() -> Path:
    """The directory holding manifests/ and environments.yaml."""
    override = process_env.project_root_override()
    if override:
        return Path(override).resolve()
    return Path(__file__).resolve().parent.parent
