"""Accepting a file: limits and quota, streaming into storage, checksums, and the one short
transaction that decides the quota (under a per-user lock) and makes the file exist.

The order matters for "nothing is left behind": bytes go to a temporary object first; the row is
inserted and the object renamed into place inside the same transaction; if anything fails
before the commit, the temporary bytes (or the renamed object) are deleted and no row remains.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from fedimpute_shared.db import session_scope, utcnow
from fedimpute_shared.events import add_to_outbox
from fedimpute_shared.problems import (
    FieldProblem,
    PayloadTooLarge,
    ProblemError,
    Unprocessable,
)
from file_manager.config import Settings
from file_manager.errors import InsufficientStorage
from file_manager.files import access, repository
from file_manager.models import AccessAction, FileFormat, FileKind, FileStatus, OutboxEvent
from file_manager.models import StoredFile as StoredFileModel
from file_manager.names import check_filename, content_type, file_format, refuse_uncompressed_vcf
from file_manager.storage import Storage
from file_manager.uploads.sink import Received, UploadSink, VcfHeadCheck
from file_manager.validation.queue import ValidationQueue
from file_manager.validation.service import validation_event

BUILDS = ("hg19", "hg38")


class ChecksumRefused(ProblemError):
    status, slug, title = 422, "checksum-mismatch", "Checksum mismatch"


@dataclass
class UploadContext:
    sessionmaker: async_sessionmaker[AsyncSession]
    storage: Storage
    settings: Settings


@dataclass
class UploadRequest:
    owner_id: uuid.UUID
    actor: str
    filename: str | None = None
    kind: FileKind = FileKind.INPUT
    job_id: uuid.UUID | None = None
    declared_build: str | None = None
    expected_md5: str | None = None
    expected_sha256: str | None = None
    content_length: int | None = None
    enforce_quota: bool = True
    on_behalf_of: uuid.UUID | None = None
    extra: dict[str, str] = field(default_factory=dict)


# ---------------------------------------------------------------- limits and checks


def gib(n: int) -> str:
    return f"{n / 1024**3:.2f} GiB ({n:,} bytes)"


def too_large(settings: Settings, size: int | None = None) -> PayloadTooLarge:
    limit = settings.max_file_size_bytes
    return PayloadTooLarge(
        f"The file is larger than the maximum upload size of {gib(limit)}.",
        limit_bytes=limit,
        size_bytes=size,
    )


def over_quota(settings: Settings, used: int, requested: int) -> InsufficientStorage:
    quota = settings.user_quota_bytes
    return InsufficientStorage(
        f"This upload would exceed your storage quota: quota {gib(quota)}, in use {gib(used)}, "
        f"this file {gib(requested)}. Delete files you no longer need.",
        quota_bytes=quota,
        used_bytes=used,
        requested_bytes=requested,
    )


def check_build(build: str | None) -> str | None:
    if build is None or build == "":
        return None
    if build not in BUILDS:
        raise Unprocessable(
            "build must be hg19 or hg38",
            errors=[
                FieldProblem(
                    pointer="#/build", field="build", message="must be hg19 or hg38", code="enum"
                )
            ],
        )
    return build


def normalise_digest(value: str | None, algorithm: str) -> str | None:
    """An expected checksum as lowercase hex; accepts hex or base64 (``Content-MD5`` style)."""
    if value is None or value == "":
        return None
    size = {"md5": 16, "sha256": 32, "sha1": 20}[algorithm]
    text = value.strip()
    if len(text) == size * 2:
        try:
            return bytes.fromhex(text).hex()
        except ValueError:
            pass
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != size:
        raise Unprocessable(
            f"the expected {algorithm} is neither {size * 2} hex digits nor base64 of {size} bytes",
            errors=[
                FieldProblem(
                    pointer=f"#/{algorithm}", field=algorithm, message="malformed", code="checksum"
                )
            ],
        )
    return raw.hex()


def verify_checksums(
    received: Received,
    md5: str | None,
    sha256: str | None,
    *,
    error: type[ProblemError] = ChecksumRefused,
) -> None:
    for name, expected, actual in (("sha256", sha256, received.sha256), ("md5", md5, received.md5)):
        if expected is not None and expected != actual:
            raise error(
                f"The {name} of the received file ({actual}) differs from the expected "
                f"{expected}; the upload was refused and nothing was kept.",
                algorithm=name,
                expected=expected,
                actual=actual,
            )


def expiry_for(kind: FileKind, settings: Settings, now: datetime) -> datetime:
    days = (
        settings.input_retention_days if kind is FileKind.INPUT else settings.result_retention_days
    )
    return now + timedelta(days=days)


def initial_status(fmt: FileFormat, kind: FileKind) -> FileStatus:
    return (
        FileStatus.VALIDATING
        if fmt is FileFormat.VCF and kind is FileKind.INPUT
        else FileStatus.NOT_VALIDATED
    )


async def current_usage(ctx: UploadContext, owner_id: uuid.UUID) -> int:
    async with session_scope(ctx.sessionmaker) as session:
        return await repository.usage_bytes(session, owner_id)


# ---------------------------------------------------------------- simple upload


class SimpleUpload:
    """One streaming upload: :meth:`begin`, :meth:`write` per chunk, :meth:`complete`; on any
    failure :meth:`abort` (the router guarantees it) leaves nothing."""

    def __init__(self, ctx: UploadContext, req: UploadRequest, request: Request | None) -> None:
        self.ctx = ctx
        self.req = req
        self.request = request
        self.sink: UploadSink | None = None
        self.format = FileFormat.OTHER

    async def begin(self) -> None:
        s, req = self.ctx.settings, self.req
        req.filename = check_filename(req.filename, max_bytes=s.max_filename_bytes)
        refuse_uncompressed_vcf(req.filename)
        req.declared_build = check_build(req.declared_build)
        self.format = file_format(req.filename)
        if req.content_length is not None and req.content_length > s.max_file_size_bytes:
            raise too_large(s, req.content_length)
        limit = s.max_file_size_bytes
        used = 0
        if req.enforce_quota:
            used = await current_usage(self.ctx, req.owner_id)
            if req.content_length is not None and used + req.content_length > s.user_quota_bytes:
                raise over_quota(s, used, req.content_length)
            limit = min(limit, max(0, s.user_quota_bytes - used))

        def over_limit(size: int) -> ProblemError:
            if size > s.max_file_size_bytes:
                return too_large(s)
            return over_quota(s, used, size)

        check = VcfHeadCheck(s.validation_max_header_bytes) if self._checks_vcf() else None
        self.sink = UploadSink(
            self.ctx.storage, limit=limit, over_limit=over_limit, vcf_check=check
        )
        await self.sink.start()

    def _checks_vcf(self) -> bool:
        return self.format is FileFormat.VCF and self.req.kind is FileKind.INPUT

    async def write(self, chunk: bytes) -> None:
        assert self.sink is not None
        await self.sink.write(chunk)

    async def complete(self) -> StoredFileModel:
        assert self.sink is not None
        received = await self.sink.finish()
        req = self.req
        verify_checksums(
            received,
            normalise_digest(req.expected_md5, "md5"),
            normalise_digest(req.expected_sha256, "sha256"),
        )
        key = self.ctx.storage.new_key()
        installed = False
        try:
            async with session_scope(self.ctx.sessionmaker) as session:
                file = await self._insert(session, received, key)
                await self.sink.commit(key)
                installed = True
        except BaseException:
            if installed:
                await self.ctx.storage.delete(key)
            raise
        return file

    async def _insert(self, session: AsyncSession, received: Received, key: str) -> StoredFileModel:
        req, s = self.req, self.ctx.settings
        await repository.lock_owner(session, req.owner_id)
        if req.enforce_quota:
            used = await repository.usage_bytes(session, req.owner_id)
            if used + received.size > s.user_quota_bytes:
                raise over_quota(s, used, received.size)
        now = utcnow()
        assert req.filename is not None
        file = StoredFileModel(
            id=uuid.uuid4(),
            owner_id=req.owner_id,
            filename=req.filename,
            kind=req.kind,
            format=self.format,
            status=initial_status(self.format, req.kind),
            content_type=content_type(req.filename),
            job_id=req.job_id,
            declared_build=check_build(req.declared_build),
            size_bytes=received.size,
            upload_offset=received.size,
            md5=received.md5,
            sha256=received.sha256,
            storage_key=key,
            upload_metadata={},
            uploaded_at=now,
            expires_at=expiry_for(req.kind, s, now),
        )
        session.add(file)
        access.record(
            session,
            file,
            req.actor,
            AccessAction.UPLOAD,
            request=self.request,
            size=received.size,
            on_behalf_of=req.on_behalf_of,
        )
        if file.status is FileStatus.NOT_VALIDATED and file.kind is FileKind.INPUT:
            await add_to_outbox(session, OutboxEvent, validation_event(file, None))
        await session.flush()
        return file

    async def abort(self) -> None:
        if self.sink is not None:
            await self.sink.abort()


async def validate_now(
    ctx: UploadContext, file: StoredFileModel, queue: ValidationQueue
) -> StoredFileModel:
    """``?wait=true``: wait for the validation queue to validate the file (never a validator
    of its own: the queue's workers bound the child processes); an invalid file is refused and
    fully removed."""
    await queue.validate(file.id)
    async with session_scope(ctx.sessionmaker) as session:
        found = await repository.get_for_update(session, file.id)
        assert found is not None
        if found.status is not FileStatus.INVALID:
            return found
        report = found.validation_report or {}
        await ctx.storage.delete(found.storage_key)
        await repository.delete_events_of(session, found.id)
        await session.delete(found)
    errors = report.get("errors") or [{"message": "invalid"}]
    raise Unprocessable(
        str(errors[0]["message"]),
        title="The file is not a valid VCF for imputation",
        report=report,
    )
