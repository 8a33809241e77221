"""The environments' databases: DSNs are secrets, read from environment variables at run time."""

import os

import dagster as dg

from ..environments import EnvironmentSpec
from ..errors import ConfigError


class DatabaseResource(dg.ConfigurableResource):
    """Each environment's DSN comes from the variable its spec names (`migrations.dsn_env`, default
    LLM_COST_OPS_OPS_<ENV>_DATABASE_URL), set from a Secret; it never enters run config, logs or
    metadata. Read lazily, so jobs that need no database (plans, renders) run without one."""

    def dsn(self, spec: EnvironmentSpec) -> str:
        """The DSN; raises ConfigError naming the variable to set."""
        name = spec.migrations.dsn_variable(spec.name)
        value = os.environ.get(name, "")
        if not value:
            raise ConfigError(f"{spec.name}: set {name} to the database DSN (from a secret)")
        return value

    def configured(self, spec: EnvironmentSpec) -> bool:
        return bool(os.environ.get(spec.migrations.dsn_variable(spec.name)))
