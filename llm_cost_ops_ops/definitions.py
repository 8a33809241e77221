"""The code location: assembles the definitions; does no rendering or cluster calls at load."""

import dagster as dg

from .defs.bundles import bundle_definitions
from .defs.jobs import render_jobs
from .defs.resources import BundleIOManager, PlatformManifests
from .environments import load_environments

ENVIRONMENTS = load_environments()

defs = dg.Definitions.merge(
    *(bundle_definitions(spec) for spec in ENVIRONMENTS.values()),
    dg.Definitions(
        jobs=render_jobs(ENVIRONMENTS),
        resources={"manifests": PlatformManifests(), "bundle_io_manager": BundleIOManager()},
    ),
)
