"""The project's error tree: one base, one subclass per kind of failure a person acts on."""


class OpsError(Exception):
    """Base of every error this project raises on purpose."""


class ConfigError(OpsError):
    """A configuration file or run config is invalid; the message names the file and field."""


class RenderError(OpsError):
    """A kustomize overlay could not be rendered into a bundle of objects."""


class BundleStoreError(OpsError):
    """A stored bundle is missing or does not match its digest."""
