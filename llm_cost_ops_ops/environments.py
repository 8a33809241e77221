"""The per-environment spec, loaded once from `environments.yaml` and validated strictly.

Everything that differs between dev, staging and prod is data here; the Dagster factory turns each
spec into definitions, and the contract check holds each rendered overlay to it.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import pydantic
import yaml
from pydantic_core import PydanticCustomError

from .config_yaml import line_of, read_yaml_tree
from .errors import ConfigError
from .kubernetes_versions import parse_target
from .paths import project_root


class _Strict(pydantic.BaseModel):
    # strict: `replicas: true` or `replicas: "3"` is an error, never silently 1 or 3.
    model_config = pydantic.ConfigDict(extra="forbid", frozen=True, strict=True)


def _kubernetes_version(value: str) -> str:
    parse_target(value)  # ValueError names the value and the versions the schemas cover
    return value


# A target version the strict schemas shipped in kubernetes-validate cover, checked at load time.
KubernetesVersion = Annotated[str, pydantic.AfterValidator(_kubernetes_version)]
# Environment names become Dagster group names, job-name suffixes and variable names.
_ENVIRONMENT_NAME = re.compile(r"^[A-Za-z0-9_]+$")


class ResourceAmounts(_Strict):
    cpu: str
    memory: str


class ContainerResources(_Strict):
    requests: ResourceAmounts
    limits: ResourceAmounts


class Autoscaling(_Strict):
    min_replicas: int = pydantic.Field(ge=1)
    max_replicas: int = pydantic.Field(ge=1)
    cpu_utilization: int = pydantic.Field(ge=1, le=100)
    memory_utilization: int = pydantic.Field(ge=1, le=100)


class ApiSpec(_Strict):
    replicas: int = pydantic.Field(ge=1)
    resources: ContainerResources
    autoscaling: Autoscaling
    pdb_min_available: int | None = None


class MemoryRange(_Strict):
    request: str
    limit: str


class DatabaseSpec(_Strict):
    """The in-cluster PostgreSQL (manifests/database), or an external one.

    External: the rendered bundle leaves out the database component (objects labelled
    app.kubernetes.io/component: database); migrations, backups, restore drills and smoke tests reach
    the database through their DSN variables as they always do. `storage` and `memory` size the
    in-cluster database and are required only for it.
    """

    external: bool = False
    # The external database's address range: the render adds a NetworkPolicy letting the API and
    # migration pods reach it. Unset: the overlay must allow that egress itself.
    external_cidr: str | None = None
    external_port: int = pydantic.Field(default=5432, ge=1, le=65535)
    storage: str = pydantic.Field(default="", validate_default=True)
    memory: MemoryRange | None = pydantic.Field(default=None, validate_default=True)

    @pydantic.field_validator("storage", "memory")
    @classmethod
    def _required_in_cluster(cls, value: Any, info: pydantic.ValidationInfo) -> Any:
        if not value and not info.data.get("external"):
            raise PydanticCustomError("missing", "Field required")
        return value

    @pydantic.field_validator("external_cidr")
    @classmethod
    def _valid_cidr(cls, value: str | None, info: pydantic.ValidationInfo) -> str | None:
        if value is not None:
            if not info.data.get("external"):
                raise ValueError("external_cidr needs external: true")
            ipaddress.ip_network(value)  # ValueError names the bad address
        return value


class DeploySpec(_Strict):
    """How deploys to the environment run: cluster context, deadlines, gates."""

    kube_context: str = ""  # kubeconfig context; empty means the current one
    # The environment's cluster (`kube-system:<uid of kube-system>`): writes anywhere else are
    # refused. Empty: the cluster its releases were recorded on (by Dagster and in the ledger).
    cluster_id: str = ""
    rollout_deadline_seconds: float = pydantic.Field(default=600, gt=0)
    database_deadline_seconds: float = pydantic.Field(default=600, gt=0)
    poll_seconds: float = pydantic.Field(default=2.0, gt=0)
    promotion_from: str | None = None  # an environment that must run the same app images healthily
    force_conflicts: bool = False
    history: int = pydantic.Field(default=10, ge=1)
    manage_namespace: bool = True  # false when deploy/rbac (an admin) creates the namespace
    # A confirmed teardown (volume claims and namespace deleted) needs a verified backup younger
    # than backups.verified_max_age_days.
    teardown_requires_verified_backup: bool = False


class MigrationSpec(_Strict):
    """How the environment's schema migrations run: once per deploy, before the API rolls out."""

    mode: Literal["direct", "job", "off"] = "direct"  # direct: from Dagster; job: a Job in the cluster
    dsn_env: str = ""  # variable holding the database DSN (default LLM_COST_OPS_OPS_<ENV>_DATABASE_URL)
    command: list[str] = ["sqlx", "migrate", "run"]  # the application image's migration command (job)
    deadline_seconds: float = pydantic.Field(default=600, gt=0)
    # Before migrating: a backup younger than backup_max_age_hours must exist; else take one
    # first (backup-first) or refuse (refuse).
    backup_gate: Literal["off", "refuse", "backup-first"] = "off"
    backup_max_age_hours: float = pydantic.Field(default=24, gt=0)

    def dsn_variable(self, environment: str) -> str:
        return self.dsn_env or f"LLM_COST_OPS_OPS_{environment.upper()}_DATABASE_URL"


class BackupSpec(_Strict):
    """Backups of the environment's database: source, retention, restore drills."""

    source: Literal["local", "pod-exec"] = "local"  # pg_dump here, or inside the postgres pod
    retention_daily: int = pydantic.Field(default=7, ge=0)
    retention_weekly: int = pydantic.Field(default=4, ge=0)
    retention_monthly: int = pydantic.Field(default=12, ge=0)
    retention_min_keep: int = pydantic.Field(default=3, ge=1)
    admin_dsn_env: str = ""  # drills and restores create databases here (default: the database DSN)
    verified_max_age_days: float = pydantic.Field(default=8, gt=0)
    # Role password hashes in the globals dump; refused unless the backup is encrypted.
    include_role_passwords: bool = False

    def admin_dsn_variable(self, migrations: MigrationSpec, environment: str) -> str:
        return self.admin_dsn_env or migrations.dsn_variable(environment)


class OperationsSpec(_Strict):
    """After the deploy: smoke tests, the failed-rollout sensor, remediation and drift detection.

    An absent URL is reached through the service's in-cluster DNS name when Dagster runs in the
    cluster, and through a Kubernetes port-forward otherwise.
    """

    base_url: str | None = None  # the API (port 8080): an ingress URL or in-cluster service DNS
    metrics_url: str | None = None  # the API's metrics port (9090)
    prometheus_url: str | None = None
    grafana_url: str | None = None
    smoke_latency_budget_seconds: float = pydantic.Field(default=2.0, gt=0)
    api_writes: bool = False  # smoke tests may write through the API (never in prod by default)
    remediation: Literal["redeploy", "rollback", "alert"] = "alert"
    sensor_interval_seconds: int = pydantic.Field(default=30, ge=5)
    max_remediations_per_hour: int = pydantic.Field(default=3, ge=0)
    crashloop_restart_threshold: int = pydantic.Field(default=3, ge=1)
    grace_period_seconds: float = pydantic.Field(default=120, ge=0)
    self_heal: bool = False  # drift triggers a redeploy through the remediation path
    allow_revert_migrations: bool = False  # rollback past a migration that has a down migration


class ObjectsSpec(_Strict):
    """Where a tree is ambiguous, the objects playing each role (role -> rendered name); and what
    the bundle's references may name outside it (service accounts, roles, hosts, namespaces)."""

    roles: dict[str, str] = {}
    external: list[str] = []


class EnvironmentSpec(_Strict):
    """What one environment must be: where it lives and what its rendered bundle must contain."""

    name: str
    # A teardown that deletes anything needs the confirmation and a verified backup (prod by default).
    protected: bool = pydantic.Field(default_factory=lambda data: data.get("name") == "prod")
    namespace: str
    overlay: str
    # How the bundle is rendered: the kustomize overlay, or the Helm chart with its values file
    # (default `<chart>/values-<name>.yaml`). Either way the same checks, deploy and ledger follow.
    renderer: Literal["kustomize", "helm"] = "kustomize"
    chart: str = "charts/llm-cost-ops"
    chart_values: str = ""
    kubernetes_version: KubernetesVersion
    mutable_image_tags: bool = False
    placeholder_secret: bool = False
    monitoring: bool
    config: dict[str, str]
    api: ApiSpec
    database: DatabaseSpec
    deploy: DeploySpec = DeploySpec()
    operations: OperationsSpec = OperationsSpec()
    migrations: MigrationSpec = MigrationSpec()
    backups: BackupSpec = BackupSpec()
    objects: ObjectsSpec = ObjectsSpec()

    @pydantic.model_validator(mode="after")
    def _backups_reach_the_database(self) -> EnvironmentSpec:
        if self.database.external and self.backups.source == "pod-exec":
            raise ValueError("backups.source pod-exec needs the in-cluster database (database.external)")
        return self

    def overlay_path(self, root: Path) -> Path:
        return root / self.overlay

    def chart_path(self, root: Path) -> Path:
        return root / self.chart

    def chart_values_path(self, root: Path) -> Path:
        return root / (self.chart_values or f"{self.chart}/values-{self.name}.yaml")


class _Defaults(_Strict):
    kubernetes_version: KubernetesVersion = "1.30"


class _EnvironmentsFile(_Strict):
    defaults: _Defaults = _Defaults()
    environments: dict[str, dict[str, Any]]


def _field_path(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc) or "(top level)"


def _one_line(
    path: Path, tree: yaml.Node | None, exc: pydantic.ValidationError, prefix: tuple[int | str, ...]
) -> str:
    first = exc.errors()[0]
    more = len(exc.errors()) - 1
    tail = f" (and {more} more)" if more else ""
    loc = prefix + tuple(first["loc"])
    line = line_of(tree, loc)
    where = f"{path}:{line}" if line else str(path)
    return f"{where}: {_field_path(loc)}: {first['msg']}{tail}"


def load_environments(path: Path | None = None) -> dict[str, EnvironmentSpec]:
    """Read and validate the environments file.

    Raises ConfigError naming the file, the line where there is one, and the offending field when
    anything is missing, unknown, of the wrong type (no coercion: `true` is not an integer) or given
    twice, when an environment name is not a valid Dagster group name, or when a
    `kubernetes_version` is not a version the shipped schemas cover.
    """
    path = path or project_root() / "environments.yaml"
    raw, tree = read_yaml_tree(path)
    try:
        parsed = _EnvironmentsFile.model_validate(raw)
    except pydantic.ValidationError as exc:
        raise ConfigError(_one_line(path, tree, exc, ())) from None
    specs: dict[str, EnvironmentSpec] = {}
    for name, body in parsed.environments.items():
        if not _ENVIRONMENT_NAME.match(name):
            line = line_of(tree, ("environments", name))
            raise ConfigError(
                f"{path}:{line}: environments.{name}: environment names may hold only letters, digits "
                "and underscores (they name Dagster asset groups and jobs)"
            )
        merged = {"name": name, **parsed.defaults.model_dump(), **body}
        try:
            specs[name] = EnvironmentSpec.model_validate(merged)
        except pydantic.ValidationError as exc:
            raise ConfigError(_one_line(path, tree, exc, ("environments", name))) from None
    if not specs:
        raise ConfigError(f"{path}: environments: at least one environment is required")
    for name, spec in specs.items():
        source = spec.deploy.promotion_from
        if source is not None and source not in specs:
            line = line_of(tree, ("environments", name, "deploy", "promotion_from"))
            raise ConfigError(
                f"{path}:{line}: environments.{name}.deploy.promotion_from: unknown environment {source!r}"
            )
    return specs


def environment_named(specs: dict[str, EnvironmentSpec], name: str, path: Path) -> EnvironmentSpec:
    """`specs[name]`; ConfigError naming the file `path` the specs came from when there is none."""
    try:
        return specs[name]
    except KeyError:
        raise ConfigError(f"{path}: no environment named {name!r}") from None
