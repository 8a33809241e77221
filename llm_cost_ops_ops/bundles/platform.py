"""Names the platform's manifests use for its parts, shared by the checks."""

NAME_LABEL = "app.kubernetes.io/name"
COMPONENT_LABEL = "app.kubernetes.io/component"

API_APP = "llm-cost-ops"  # Deployment, Service, HPA, PDB and pod name label of the API
# The pods of the migration Job the deploy runs (k8s/migration_job.py labels them so).
MIGRATION_POD_LABELS = {NAME_LABEL: API_APP, COMPONENT_LABEL: "migrations"}
DATABASE_APP = "postgres"  # StatefulSet and pod name label of PostgreSQL
SCRAPER_APP = "prometheus"  # pod name label of the metrics scraper
INGRESS_NAMESPACE = "ingress-nginx"  # the ingress controller's namespace: external traffic enters there
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"
CLUSTER_SCOPED_KINDS = frozenset(
    {
        "Namespace",
        "ClusterRole",
        "ClusterRoleBinding",
        "CustomResourceDefinition",
        "StorageClass",
        "PriorityClass",
        "PersistentVolume",
        "IngressClass",
        "ValidatingWebhookConfiguration",
        "MutatingWebhookConfiguration",
        "APIService",
        "RuntimeClass",
    }
)
MONITORING_DEPLOYMENTS = ("prometheus", "grafana")
APP_CONFIGMAP = "llm-cost-ops-config"
APP_SECRET = "llm-cost-ops-secrets"
DATABASE_VOLUME_CLAIM = "data"

# Annotation a workload sets, with the reason, when a container cannot run read-only.
WRITABLE_ROOT_ANNOTATION = "llm-cost-ops-ops/writable-root-filesystem"
