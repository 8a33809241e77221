"""What a deploy will need, checked before its first write.

A deploy used to find a missing DSN only in its migration wave, after the namespace, RBAC, config,
claims, services and the database StatefulSet had been applied and waited for, and then recorded a
failed release. Everything the migration wave and its backup gate will ask for is asked for here,
first: the DSN of direct-mode migrations, the application image of job-mode migrations, the gate's
verdict (a `refuse` gate with no fresh backup refuses now) and, when the gate will take a backup,
the DSN that backup dumps. Raises the same errors the wave would, with nothing applied.
"""

from datetime import UTC, datetime, timedelta

from ..bundles.model import RenderedBundle
from ..environments import EnvironmentSpec
from ..errors import ConfigError
from .backup_storage import BackupStorageResource
from .databases import DatabaseResource


def preflight(
    spec: EnvironmentSpec, bundle: RenderedBundle, databases: DatabaseResource, backups: BackupStorageResource
) -> list[str]:
    """Check the migration wave's prerequisites; returns what was checked. Raises ConfigError or
    BackupGateRefused."""
    from ..k8s.releases import app_images

    migrations = spec.migrations
    if migrations.mode == "off":
        return []
    checked = []
    if migrations.mode == "direct":
        databases.dsn(spec)
        checked.append(f"{migrations.dsn_variable(spec.name)} is set")
    elif not app_images(bundle.images()):
        raise ConfigError(
            f"{spec.name}: job-mode migrations need the application image; the bundle runs none"
        )
    if migrations.backup_gate == "off":
        return checked
    from ..postgres.backup_errors import BackupGateRefused
    from ..storage.catalog import backup_ages, read_catalog

    ages = backup_ages(read_catalog(backups.store(), spec.name), datetime.now(UTC))
    limit = timedelta(hours=migrations.backup_max_age_hours)
    if ages.newest is not None and ages.newest <= limit:
        return [*checked, f"backup gate: {ages.newest_id} is fresh"]
    state = "no backup" if ages.newest is None else f"the newest backup is {ages.newest} old"
    if migrations.backup_gate == "refuse":
        raise BackupGateRefused(f"{spec.name}: {state} (limit {limit}); run backup_{spec.name} first")
    databases.dsn(spec)  # the gate will take a backup first: its dump needs the DSN
    return [
        *checked,
        f"backup gate: {state}, a backup will be taken first ({migrations.dsn_variable(spec.name)} is set)",
    ]
