"""An environment on an external PostgreSQL: the rendered bundle without the database component.

The overlays all include manifests/database; for an environment whose spec says
`database.external: true` the objects of that component (labelled app.kubernetes.io/component:
database) are dropped after kustomize renders, so one overlay serves both setups and the deploy's
database wave is simply empty. With `database.external_cidr` a NetworkPolicy is added that lets the
API and migration pods reach that address range on the database port; without it the overlay must
allow that egress itself (the base policies allow only the in-cluster postgres pods).

The kept objects are left as rendered, so they may still name the dropped pods (the base
NetworkPolicies' egress to postgres, the postgres-exporter scrape job): `left_out_database` tells
the references check that such a selector is meant to match nothing here.
"""

from __future__ import annotations

from typing import Any

from ..environments import EnvironmentSpec
from .model import ManifestObject, RenderedBundle
from .platform import API_APP, COMPONENT_LABEL, DATABASE_APP, NAME_LABEL

DATABASE_COMPONENT = "database"
EGRESS_POLICY = "llm-cost-ops-external-database"
GENERATED_SOURCE = "environments.yaml (database.external_cidr)"


def left_out_database(spec: EnvironmentSpec, labels: dict[str, str]) -> bool:
    """Whether a selector's labels pick the in-cluster database's pods, which an environment on an
    external database leaves out (always False for the in-cluster database)."""
    return spec.database.external and (
        labels.get(COMPONENT_LABEL) == DATABASE_COMPONENT or labels.get(NAME_LABEL) == DATABASE_APP
    )


def external_database_egress(spec: EnvironmentSpec, labels: dict[str, str]) -> dict[str, Any]:
    """The NetworkPolicy letting the application's pods (API and migration Jobs) reach the external
    database at `database.external_cidr`:`database.external_port`."""
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {
            "name": EGRESS_POLICY,
            "namespace": spec.namespace,
            "labels": {**labels, NAME_LABEL: API_APP},
        },
        "spec": {
            "podSelector": {"matchLabels": {NAME_LABEL: API_APP}},
            "policyTypes": ["Egress"],
            "egress": [
                {
                    "to": [{"ipBlock": {"cidr": spec.database.external_cidr}}],
                    "ports": [{"protocol": "TCP", "port": spec.database.external_port}],
                }
            ],
        },
    }


def for_database_mode(bundle: RenderedBundle, spec: EnvironmentSpec) -> RenderedBundle:
    """The bundle as the environment's database mode wants it: unchanged for the in-cluster
    database; without the database component (plus the egress policy, when a CIDR is given) for an
    external one."""
    if not spec.database.external:
        return bundle
    kept = [o for o in bundle.objects if o.labels.get(COMPONENT_LABEL) != DATABASE_COMPONENT]
    if spec.database.external_cidr:
        # The policy carries the labels the overlay gives every object (part-of, inventory labels).
        api = next((o for o in kept if o.kind == "Deployment" and o.name == API_APP), None)
        common = {k: v for k, v in (api.labels if api else {}).items() if k != COMPONENT_LABEL}
        kept.append(ManifestObject(external_database_egress(spec, common), GENERATED_SOURCE))
    return RenderedBundle.from_objects(bundle.environment, kept, bundle.warnings)
