"""file-manager settings (environment variables; see ServiceSettings for the shared ones)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, field_validator

from fedimpute_shared.config import ServiceSettings

GiB = 1024**3
MiB = 1024**2


class Settings(ServiceSettings):
    service_name: str = "file-manager"
    port: int = 8004
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/file_management_db"

    # Where bytes live (local filesystem backend): objects/, partial/ (tus), tmp/.
    storage_dir: Path = Path("var/file-manager")
    # The public path prefix of this service's routes as clients see them (behind the gateway,
    # which strips /api). Used for tus `Location` and signed-link URLs when the request carries
    # no X-Forwarded-Prefix header.
    public_base_path: str = "/api/files"

    # Limits
    max_file_size_bytes: int = Field(default=50 * GiB, ge=1)
    user_quota_bytes: int = Field(default=200 * GiB, ge=1)
    max_filename_bytes: int = Field(default=255, ge=16, le=1024)

    # tus resumable uploads
    tus_upload_expiry_hours: float = Field(default=24, gt=0)

    # Validation (runs in a child process with these bounds)
    validation_concurrency: int = Field(default=2, ge=1)
    validation_timeout_seconds: float = Field(default=3600, gt=0)
    validation_memory_limit_mb: int = Field(default=2048, ge=256)
    validation_max_decompressed_bytes: int = Field(default=500 * GiB, ge=1)
    validation_max_compression_ratio: float = Field(default=1000, gt=1)
    validation_max_header_bytes: int = Field(default=16 * MiB, ge=1024)
    validation_max_line_bytes: int = Field(default=64 * MiB, ge=1024)
    validation_min_samples_warning: int = Field(default=20, ge=0)
    # Keep the bytes of a file that failed validation (off: an invalid file can feed no job).
    keep_invalid_files: bool = False

    # Signed download links
    download_link_secret: SecretStr = SecretStr("dev-download-link-secret-change-me")
    download_link_default_seconds: int = Field(default=3600, ge=60)
    download_link_max_seconds: int = Field(default=7 * 24 * 3600, ge=60)

    # Retention
    input_retention_days: float = Field(default=30, gt=0)
    result_retention_days: float = Field(default=7, gt=0)
    expiry_warning_hours: float = Field(default=48, ge=0)
    reaper_enabled: bool = True
    reaper_interval_seconds: float = Field(default=300, gt=0)
    reaper_batch_size: int = Field(default=100, ge=1)
    # The orphan sweep leaves bytes younger than this alone (an upload or a deletion may be
    # between its commit and its rename or removal right now).
    orphan_grace_seconds: float = Field(default=3600, ge=0)

    @field_validator("public_base_path")
    @classmethod
    def _path_prefix(cls, value: str) -> str:
        value = "/" + value.strip().strip("/")
        return "" if value == "/" else value
