"""Jobs over the manifest bundles."""

from __future__ import annotations

import dagster as dg

from ..environments import EnvironmentSpec
from .keys import manifests_key


def render_jobs(specs: dict[str, EnvironmentSpec]) -> list[dg.UnresolvedAssetJobDefinition]:
    """`render_and_check` for every environment, and `render_and_check_<env>` for one."""
    every = dg.define_asset_job(
        "render_and_check",
        selection=dg.AssetSelection.assets(*(manifests_key(env) for env in specs)),
        description="Render every environment's overlay with kustomize and run the blocking "
        "schema, policy and contract checks. Writes nothing to any cluster.",
        tags={"operation": "render"},
    )
    one = [
        dg.define_asset_job(
            f"render_and_check_{env}",
            selection=dg.AssetSelection.assets(manifests_key(env)),
            description=f"Render the {env} overlay and run its blocking checks.",
            tags={"operation": "render", "env": env},
        )
        for env in specs
    ]
    return [every, *one]
