"""Pydantic models of the files API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from fedimpute_shared.text import SafeInput
from file_manager.models import FileFormat, FileKind, FileStatus


class FileFilters(SafeInput):
    kind: FileKind | None = None
    job_id: uuid.UUID | None = None
    status: FileStatus | None = None
    owner_id: uuid.UUID | None = Field(
        default=None, description="Admins only: another user's files."
    )


class Checksums(BaseModel):
    md5: str | None
    sha256: str | None


class FileOut(BaseModel):
    id: uuid.UUID
    owner_id: uuid.UUID
    filename: str
    kind: FileKind
    format: FileFormat
    status: FileStatus
    content_type: str
    size_bytes: int
    upload_offset: int
    checksums: Checksums
    job_id: uuid.UUID | None
    declared_build: str | None
    has_index: bool
    content_available: bool
    validation: dict[str, Any] | None = Field(
        description="The validation report: status, errors (with line/record), warnings, "
        "statistics, build detection with its evidence."
    )
    created_at: datetime
    uploaded_at: datetime | None
    validated_at: datetime | None
    expires_at: datetime | None
    upload_expires_at: datetime | None


class UsageOut(BaseModel):
    used_bytes: int
    quota_bytes: int
    max_file_size_bytes: int


class LinkCreate(SafeInput):
    expires_in_seconds: int | None = Field(default=None, ge=60)
    single_use: bool = False


class LinkOut(BaseModel):
    id: uuid.UUID
    file_id: uuid.UUID
    expires_at: datetime
    single_use: bool
    used_at: datetime | None
    revoked_at: datetime | None
    created_at: datetime


class LinkCreated(LinkOut):
    url: str = Field(description="Path of the public download (no token needed), e.g. for curl.")
    token: str
