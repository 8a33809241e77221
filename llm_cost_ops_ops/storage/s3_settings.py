"""How to reach an S3-API bucket and how to cut uploads into parts: the settings both the store
(`s3.py`) and its multipart upload (`s3_upload.py`) read, so neither imports the other's module."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

MIN_PART = 5 * 1024 * 1024  # S3 rejects any part but the last under 5 MiB


@dataclass(frozen=True)
class S3Settings:
    bucket: str
    prefix: str = ""
    endpoint_url: str = ""  # empty: AWS for the region
    region: str = "us-east-1"
    access_key_id: str = ""
    secret_access_key: str = field(default="", repr=False)
    session_token: str = field(default="", repr=False)
    addressing_style: Literal["auto", "path", "virtual"] = "auto"
    server_side_encryption: str = ""  # "AES256" or "aws:kms"
    sse_kms_key_id: str = ""
    create_bucket: bool = False
    max_attempts: int = 5
    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    part_size: int = 8 * 1024 * 1024
    max_part_size: int = 128 * 1024 * 1024
    parts_in_flight: int = 2
    download_resumes: int = 3

    def __post_init__(self) -> None:
        if self.part_size < MIN_PART:
            raise ValueError(f"part_size {self.part_size} is below S3's minimum of {MIN_PART} bytes")
