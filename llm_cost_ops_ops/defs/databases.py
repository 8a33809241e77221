"""The environments' databases: DSNs are secrets, read from environment variables at run time."""

import dagster as dg

from .. import process_env
from ..environments import EnvironmentSpec
from ..errors import ConfigError


class DatabaseResource(dg.ConfigurableResource):
    """Each environment's DSN comes from the variable its spec names (`migrations.dsn_env`, default
    LLM_COST_OPS_OPS_<ENV>_DATABASE_URL), set from a Secret; it never enters run config, logs or
    metadata. Read lazily, so jobs that need no database (plans, renders) run without one."""

    def dsn(self, spec: EnvironmentSpec) -> str:
        """The DSN; raises ConfigError naming the variable to set."""
        name = spec.migrations.dsn_variable(spec.name)
        value = process_env.value(name)
        if not value:
            raise ConfigError(f"{spec.name}: set {name} to the database DSN (from a secret)")
        return value

    def configured(self, spec: EnvironmentSpec) -> bool:
        return process_env.is_set(spec.migrations.dsn_variable(spec.name))
