"""The environments' databases: DSNs are secrets, read from environment variables at run time."""

import dagster as dg

from .. import process_env
from ..environments import EnvironmentSpec
from ..errors import ConfigError


def _required(spec: EnvironmentSpec, name: str, what: str) -> str:
    value = process_env.value(name)
    if not value:
        raise ConfigError(f"{spec.name}: set {name} to {what} (from a secret)")
    return value


class DatabaseResource(dg.ConfigurableResource):
    """Each environment's DSN comes from the variable its spec names (`migrations.dsn_env`, default
    LLM_COST_OPS_OPS_<ENV>_DATABASE_URL), set from a Secret; it never enters run config, logs or
    metadata. Read lazily, so jobs that need no database (plans, renders) run without one."""

    def dsn(self, spec: EnvironmentSpec) -> str:
        """The DSN; raises ConfigError naming the variable to set."""
        return _required(spec, spec.migrations.dsn_variable(spec.name), "the database DSN")

    def configured(self, spec: EnvironmentSpec) -> bool:
        return process_env.is_set(spec.migrations.dsn_variable(spec.name))

    def admin_dsn(self, spec: EnvironmentSpec) -> str:
        """The DSN drills and restores create databases with (`backups.admin_dsn_env`, default the
        database DSN); raises ConfigError naming the variable to set."""
        name = spec.backups.admin_dsn_variable(spec.migrations, spec.name)
        return _required(spec, name, "a DSN that may create databases (drills, restores)")
