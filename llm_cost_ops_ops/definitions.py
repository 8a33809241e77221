"""The code location: assembles the definitions; does no rendering or cluster calls at load."""

import dagster as dg

from .defs.bundles import bundle_definitions
from .defs.deploy import deploy_definitions
from .defs.jobs import render_jobs
from .defs.kubernetes import KubernetesResource
from .defs.resources import BundleIOManager, PlatformManifests
from .environments import load_environments

ENVIRONMENTS = load_environments()

defs = dg.Definitions.merge(
    *(bundle_definitions(spec) for spec in ENVIRONMENTS.values()),
    *(deploy_definitions(spec, ENVIRONMENTS) for spec in ENVIRONMENTS.values()),
    dg.Definitions(
        jobs=render_jobs(ENVIRONMENTS),
        # Steps are short and sequential (render, check, apply); a process per step would cost more
        # than the work. Isolation per run comes from the run launcher (a Kubernetes Job per run).
        executor=dg.in_process_executor,
        resources={
            "manifests": PlatformManifests(),
            "bundle_io_manager": BundleIOManager(),
            "kubernetes": KubernetesResource(),
        },
    ),
)
