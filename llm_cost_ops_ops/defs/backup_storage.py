"""Where backups are kept: a local directory (the embedded default) or S3-compatible storage."""

from pathlib import Path
from typing import Literal

import dagster as dg
from pydantic import Field

from .. import process_env
from ..errors import ConfigError
from ..paths import project_root


class BackupStorageResource(dg.ConfigurableResource):
    """Where backups go: a local directory (the embedded default) or any S3-compatible service.
    Credentials and the client-side encryption key are secrets: set them with dg.EnvVar."""

    kind: Literal["local", "s3"] = "local"
    local_dir: str = Field(
        default="", description="Default: $DAGSTER_HOME/backups, else dagster_home/backups."
    )
    bucket: str = ""
    prefix: str = "llm-cost-ops"
    endpoint_url: str = Field(default="", description="MinIO, SeaweedFS, GCS interop...; empty: AWS.")
    region: str = "us-east-1"
    access_key_id: str = ""
    secret_access_key: str = ""
    addressing_style: Literal["auto", "path", "virtual"] = "auto"
    server_side_encryption: str = Field(default="", description='"AES256" or "aws:kms".')
    sse_kms_key_id: str = ""
    create_bucket: bool = Field(default=False, description="Create a missing bucket (else a clear error).")
    encryption_key_env: str = Field(
        default="LLM_COST_OPS_OPS_BACKUP_KEY", description="Variable with a base64 AES-256 key (unset: none)."
    )

    def store(self):
        """The object store; raises StorageError subclasses on use, never here."""
        if self.kind == "local":
            from ..storage.local import LocalDirectoryStore

            home = process_env.dagster_home() or str(project_root() / "dagster_home")
            return LocalDirectoryStore(Path(self.local_dir or Path(home) / "backups"))
        from ..storage.s3 import S3Settings, S3Store

        if not self.bucket:
            raise ConfigError("backup storage: kind s3 needs a bucket")
        return S3Store(
            S3Settings(
                bucket=self.bucket,
                prefix=self.prefix,
                endpoint_url=self.endpoint_url,
                region=self.region,
                access_key_id=self.access_key_id,
                secret_access_key=self.secret_access_key,
                addressing_style=self.addressing_style,
                server_side_encryption=self.server_side_encryption,
                sse_kms_key_id=self.sse_kms_key_id,
                create_bucket=self.create_bucket,
            )
        )

    def key(self):
        from ..storage.crypto import EncryptionKey

        return EncryptionKey.from_env(self.encryption_key_env) if self.encryption_key_env else None
