"""What this Dagster instance recorded of an environment: values read back from the latest
materializations of its assets (the cluster a release ran on, the image it runs)."""

from __future__ import annotations

import dagster as dg

from ..environments import EnvironmentSpec
from .keys import deployed_key


def latest_metadata(instance: dg.DagsterInstance, key: dg.AssetKey) -> dict:
    """The plain values of `key`'s latest materialization's metadata ({} when never materialized)."""
    event = instance.get_latest_materialization_event(key)
    materialization = event.asset_materialization if event else None
    if materialization is None:
        return {}
    return {name: getattr(value, "value", value) for name, value in materialization.metadata.items()}


def expected_cluster(instance: dg.DagsterInstance, spec: EnvironmentSpec) -> str:
    """The cluster `spec`'s environment runs on: `deploy.cluster_id`, else the one its newest
    release recorded in this Dagster instance ('' when it was never deployed from here)."""
    if spec.deploy.cluster_id:
        return spec.deploy.cluster_id
    return str(latest_metadata(instance, deployed_key(spec.name)).get("cluster") or "")


def deployed_app_image(instance: dg.DagsterInstance, environment: str) -> str:
    """The application image the latest release of `environment` runs ('' when none recorded)."""
    from ..k8s.releases import app_images

    images = latest_metadata(instance, deployed_key(environment)).get("images")
    found = sorted(app_images([str(v) for v in images] if isinstance(images, list) else []))
    return found[0] if found else ""
