"""tus 1.0 resumable uploads: creation, appending chunks, completion, termination.

A tus upload is a ``files`` row in status ``uploading`` (its full length reserved against the
quota) plus a partial object in storage. Each PATCH appends under an exclusive lock on the
partial object; the partial object's size, not the database, is the true offset, so a PATCH cut
off half way resumes exactly where the bytes stopped. MD5 and SHA-256 are computed while the
bytes stream in when one process sees the upload from start to end (the common case); after a
restart or when another replica took over, they are computed from the stored bytes at completion.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hashlib
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession

from fedimpute_shared.db import session_scope, utcnow
from fedimpute_shared.events import add_to_outbox
from fedimpute_shared.problems import BadRequest, Conflict, Gone, NotFound, PayloadTooLarge
from file_manager.errors import ChecksumMismatch, Locked
from file_manager.files import access, repository
from file_manager.models import (
    AccessAction,
    FileFormat,
    FileKind,
    FileStatus,
    OutboxEvent,
    StoredFile,
)
from file_manager.names import check_filename, content_type, file_format, refuse_uncompressed_vcf
from file_manager.storage import PartialUpload, StorageError, UploadLocked
from file_manager.uploads.service import (
    UploadContext,
    check_build,
    expiry_for,
    initial_status,
    normalise_digest,
    over_quota,
    too_large,
    verify_checksums,
)
from file_manager.uploads.sink import Overlap, Received, VcfHeadCheck, vcf_problem
from file_manager.validation.service import validation_event
from file_manager.vcf.header import Rejected

CHECKSUM_ALGORITHMS = {"sha1": hashlib.sha1, "md5": hashlib.md5, "sha256": hashlib.sha256}
WRITE_BYTES = 1024 * 1024


# ------------------------------------------------------------------ metadata


def parse_metadata(header: str | None) -> dict[str, str]:
    """``Upload-Metadata``: comma-separated ``key base64value`` pairs (value optional)."""
    result: dict[str, str] = {}
    if not header:
        return result
    for pair in header.split(","):
        parts = pair.strip().split(" ")
        if not parts[0] or len(parts) > 2:
            raise BadRequest("Upload-Metadata is malformed")
        try:
            value = base64.b64decode(parts[1], validate=True).decode() if len(parts) == 2 else ""
        except (binascii.Error, UnicodeDecodeError):
            raise BadRequest(f"Upload-Metadata value of {parts[0]!r} is not base64 UTF-8") from None
        result[parts[0]] = value
    return result


def encode_metadata(metadata: dict[str, str]) -> str:
    return ",".join(
        f"{k} {base64.b64encode(v.encode()).decode()}" if v else k for k, v in metadata.items()
    )


def parse_upload_checksum(header: str | None) -> tuple[str, bytes] | None:
    """``Upload-Checksum: <algorithm> <base64 digest>`` (tus checksum extension)."""
    if header is None:
        return None
    try:
        algorithm, encoded = header.strip().split(" ", 1)
        digest = base64.b64decode(encoded.strip(), validate=True)
    except (ValueError, binascii.Error):
        raise BadRequest("Upload-Checksum must be '<algorithm> <base64 digest>'") from None
    if algorithm.lower() not in CHECKSUM_ALGORITHMS:
        raise BadRequest(
            f"unsupported checksum algorithm {algorithm!r}; use one of "
            + ", ".join(CHECKSUM_ALGORITHMS)
        )
    return algorithm.lower(), digest


# ------------------------------------------------------------------ digests kept between PATCHes


@dataclass
class _Digests:
    offset: int
    md5: Any
    sha256: Any


class DigestCache:
    """Running MD5/SHA-256 of uploads in progress in this process (bounded, LRU)."""

    def __init__(self, capacity: int = 1000) -> None:
        self._entries: OrderedDict[uuid.UUID, _Digests] = OrderedDict()
        self._capacity = capacity

    def take(self, upload_id: uuid.UUID, offset: int) -> _Digests | None:
        """The digests if they cover exactly ``offset`` bytes (else they are useless)."""
        entry = self._entries.pop(upload_id, None)
        if offset == 0:
            return _Digests(0, hashlib.md5(usedforsecurity=False), hashlib.sha256())
        return entry if entry is not None and entry.offset == offset else None

    def put(self, upload_id: uuid.UUID, digests: _Digests) -> None:
        self._entries[upload_id] = digests
        while len(self._entries) > self._capacity:
            self._entries.popitem(last=False)

    def forget(self, upload_id: uuid.UUID) -> None:
        self._entries.pop(upload_id, None)


# ------------------------------------------------------------------ creation


@dataclass
class Creation:
    owner_id: uuid.UUID
    actor: str
    length: int
    metadata: dict[str, str]


async def create(ctx: UploadContext, creation: Creation, request: Request) -> StoredFile:
    s, meta = ctx.settings, creation.metadata
    name = check_filename(meta.get("filename") or meta.get("name"), max_bytes=s.max_filename_bytes)
    refuse_uncompressed_vcf(name)
    build = check_build(meta.get("build"))
    expected = {
        "md5": normalise_digest(meta.get("md5"), "md5"),
        "sha256": normalise_digest(meta.get("sha256"), "sha256"),
    }
    if creation.length > s.max_file_size_bytes:
        raise too_large(s, creation.length)
    key = ctx.storage.new_key()
    now = utcnow()
    await asyncio.to_thread(ctx.storage.create_partial, key)
    try:
        return await _insert_upload(ctx, creation, name, build, expected, key, now)
    except BaseException:
        await ctx.storage.delete_partial(key)
        raise


async def _insert_upload(
    ctx: UploadContext,
    creation: Creation,
    name: str,
    build: str | None,
    expected: dict[str, str | None],
    key: str,
    now: datetime,
) -> StoredFile:
    s, meta = ctx.settings, creation.metadata
    async with session_scope(ctx.sessionmaker) as session:
        await repository.lock_owner(session, creation.owner_id)
        used = await repository.usage_bytes(session, creation.owner_id)
        if used + creation.length > s.user_quota_bytes:
            raise over_quota(s, used, creation.length)
        fmt = file_format(name)
        file = StoredFile(
            id=uuid.uuid4(),
            owner_id=creation.owner_id,
            filename=name,
            kind=FileKind.INPUT,
            format=fmt,
            status=FileStatus.UPLOADING,
            content_type=content_type(name),
            declared_build=build,
            size_bytes=creation.length,
            upload_offset=0,
            storage_key=key,
            upload_metadata={"raw": meta, "expected": expected},
            upload_expires_at=now + timedelta(hours=s.tus_upload_expiry_hours),
        )
        session.add(file)
        await session.flush()
    return file


# ------------------------------------------------------------------ PATCH


@dataclass
class Patch:
    upload_id: uuid.UUID
    owner_id: uuid.UUID
    is_admin: bool
    offset: int
    checksum: tuple[str, bytes] | None


async def find_upload(
    session: AsyncSession, upload_id: uuid.UUID, owner_id: uuid.UUID, is_admin: bool
) -> StoredFile:
    file = await repository.get_live(session, upload_id)
    if file is None or (file.owner_id != owner_id and not is_admin):
        raise NotFound(f"no upload {upload_id}")
    return file


async def append(
    ctx: UploadContext,
    cache: DigestCache,
    patch: Patch,
    body: AsyncIterator[bytes],
    request: Request,
) -> StoredFile:
    """Append a PATCH body at ``patch.offset``; completes the upload when the last byte is in."""
    async with session_scope(ctx.sessionmaker) as session:
        file = await find_upload(session, patch.upload_id, patch.owner_id, patch.is_admin)
    if file.status is not FileStatus.UPLOADING:
        if patch.offset == file.size_bytes:
            return file  # already complete: a client retrying its last PATCH
        raise Conflict("this upload is complete", headers={"Upload-Offset": str(file.size_bytes)})
    if file.upload_expires_at is not None and file.upload_expires_at < utcnow():
        raise Gone("this upload has expired")
    try:
        partial = await asyncio.to_thread(ctx.storage.open_partial, file.storage_key)
    except UploadLocked:
        raise Locked("another request is writing to this upload; retry later") from None
    except StorageError:
        raise Gone("this upload is gone") from None
    try:
        new_offset = await _write_chunk(partial, cache, file, patch, body)
    finally:
        await asyncio.to_thread(partial.close)
    return await _advance(ctx, cache, file, new_offset, request)


async def _write_chunk(
    partial: PartialUpload,
    cache: DigestCache,
    file: StoredFile,
    patch: Patch,
    body: AsyncIterator[bytes],
) -> int:
    start = await asyncio.to_thread(partial.size)
    if patch.offset != start:
        raise Conflict(
            f"Upload-Offset {patch.offset} does not match the upload's offset {start}",
            headers={"Upload-Offset": str(start)},
            offset=start,
        )
    digests = cache.take(file.id, start)
    chunk_hash = CHECKSUM_ALGORITHMS[patch.checksum[0]]() if patch.checksum else None
    written = start
    buffer: list[bytes] = []
    buffered = 0

    def write(data: bytes) -> None:
        partial.append(data)
        for h in (chunk_hash, digests.sha256 if digests else None):
            if h is not None:
                h.update(data)

    async def digest_and_write(data: bytes) -> None:
        if digests is None:
            await asyncio.to_thread(write, data)
        else:  # MD5, the slowest digest, on a second thread beside the write
            await asyncio.gather(
                asyncio.to_thread(digests.md5.update, data), asyncio.to_thread(write, data)
            )

    overlap = Overlap()  # a buffer is written while the next one arrives

    async def flush() -> None:
        nonlocal buffer, buffered
        data, buffer, buffered = b"".join(buffer), [], 0
        await overlap.submit(lambda: digest_and_write(data))

    try:
        async for chunk in body:
            written += len(chunk)
            if written > file.size_bytes:
                raise PayloadTooLarge("the PATCH goes past Upload-Length")
            buffer.append(chunk)
            buffered += len(chunk)
            if buffered >= WRITE_BYTES:
                await flush()
        await flush()
        await overlap.wait()
        if chunk_hash is not None and patch.checksum and chunk_hash.digest() != patch.checksum[1]:
            raise ChecksumMismatch("the chunk does not match its Upload-Checksum; it was discarded")
    except BaseException as exc:
        # With a checksum the chunk is all or nothing; without one, keep what arrived (tus core)
        # unless the request itself was refused.
        keep = chunk_hash is None and not isinstance(exc, (PayloadTooLarge, ChecksumMismatch))
        await overlap.settle()
        if not keep:
            await asyncio.to_thread(partial.truncate, start)
            await asyncio.to_thread(partial.sync)
            raise
        if digests is not None:
            digests = None  # what was hashed no longer matches what is kept: rehash at the end
        await flush()
        await overlap.wait()
        await asyncio.to_thread(partial.sync)
        cache.forget(file.id)
        raise
    # No fsync per PATCH: waiting for the disk after every chunk would serialise network and
    # disk. After a machine crash the partial object may be shorter than acknowledged; HEAD
    # reports its real size, so a client resumes from there. Completion fsyncs the whole file.
    if digests is not None:
        digests.offset = written
        cache.put(file.id, digests)
    return written


async def _advance(
    ctx: UploadContext, cache: DigestCache, file: StoredFile, offset: int, request: Request
) -> StoredFile:
    if offset < file.size_bytes:
        async with session_scope(ctx.sessionmaker) as session:
            found = await repository.get_for_update(session, file.id)
            if not _in_progress(found):
                raise Gone("this upload is gone")
            assert found is not None
            found.upload_offset = offset
            found.upload_expires_at = utcnow() + timedelta(
                hours=ctx.settings.tus_upload_expiry_hours
            )
            return found
    return await _complete(ctx, cache, file, request)


async def _complete(
    ctx: UploadContext, cache: DigestCache, file: StoredFile, request: Request
) -> StoredFile:
    """Every byte is in: checksums, the VCF head checks, then the file exists."""
    received = await _digests(ctx, cache, file)
    expected = file.upload_metadata.get("expected", {})
    try:
        verify_checksums(
            received, expected.get("md5"), expected.get("sha256"), error=ChecksumMismatch
        )
        if file.format is FileFormat.VCF:
            await _check_vcf_head(ctx, file)
    except BaseException:
        await _discard(ctx, file)
        raise
    async with session_scope(ctx.sessionmaker) as session:
        found = await repository.get_for_update(session, file.id)
        if not _in_progress(found):
            raise Gone("this upload is gone")
        assert found is not None
        now = utcnow()
        found.status = initial_status(found.format, found.kind)
        found.upload_offset = found.size_bytes
        found.md5, found.sha256 = received.md5, received.sha256
        found.uploaded_at, found.upload_expires_at = now, None
        found.expires_at = expiry_for(found.kind, ctx.settings, now)
        access.record(
            session,
            found,
            f"user:{found.owner_id}",
            AccessAction.UPLOAD,
            request=request,
            size=found.size_bytes,
            detail="tus",
        )
        if found.status is FileStatus.NOT_VALIDATED:
            await add_to_outbox(session, OutboxEvent, validation_event(found, None))
        await session.flush()
    # Committed first, renamed second: a crash in between leaves a complete file whose bytes
    # are still the partial upload, which the reaper's orphan sweep renames into place
    # (renaming first and failing to commit would strand the bytes of an upload still open).
    await asyncio.to_thread(ctx.storage.commit_partial, found.storage_key, found.storage_key)
    return found


def _in_progress(file: StoredFile | None) -> bool:
    """Still an upload: not finished, not deleted (DELETE /files/{id} may race a PATCH)."""
    return file is not None and file.deleted_at is None and file.status is FileStatus.UPLOADING


async def _digests(ctx: UploadContext, cache: DigestCache, file: StoredFile) -> Received:
    digests = cache.take(file.id, file.size_bytes)
    cache.forget(file.id)
    if digests is None:  # another process saw part of the upload: hash the stored bytes
        digests = _Digests(0, hashlib.md5(usedforsecurity=False), hashlib.sha256())
        async for chunk in ctx.storage.read_partial(file.storage_key):
            await asyncio.to_thread(_update, digests, chunk)
    return Received(file.size_bytes, digests.md5.hexdigest(), digests.sha256.hexdigest())


def _update(digests: _Digests, chunk: bytes) -> None:
    digests.md5.update(chunk)
    digests.sha256.update(chunk)


async def _check_vcf_head(ctx: UploadContext, file: StoredFile) -> None:
    """The upload-time VCF checks (container, header, EOF marker) on the stored bytes."""
    check = VcfHeadCheck(ctx.settings.validation_max_header_bytes)
    size = 0
    try:
        async with contextlib.aclosing(ctx.storage.read_partial(file.storage_key)) as chunks:
            async for chunk in chunks:
                size += len(chunk)
                await asyncio.to_thread(check.feed, chunk)
                if check.header_done:
                    break  # the header is checked; only the EOF marker is left to see
        if size < file.size_bytes:
            tail = b""
            async for chunk in ctx.storage.read_partial(file.storage_key, file.size_bytes - 64):
                tail += chunk
            check.feed_tail(tail)
        await asyncio.to_thread(check.finish)
    except Rejected as rejected:
        raise vcf_problem(rejected) from None


async def _discard(ctx: UploadContext, file: StoredFile) -> None:
    """Remove an upload completely: partial bytes and row."""
    await ctx.storage.delete_partial(file.storage_key)
    async with session_scope(ctx.sessionmaker) as session:
        found = await repository.get_for_update(session, file.id)
        if found is not None and found.status is FileStatus.UPLOADING:
            await session.delete(found)


async def terminate(ctx: UploadContext, cache: DigestCache, file: StoredFile) -> None:
    """tus termination: DELETE an upload in progress."""
    if file.status is not FileStatus.UPLOADING:
        raise Conflict("this upload is complete; delete the file with DELETE /files/{id}")
    try:
        partial = await asyncio.to_thread(ctx.storage.open_partial, file.storage_key)
    except UploadLocked:
        raise Locked("a PATCH is in progress on this upload; retry later") from None
    except StorageError:
        partial = None
    cache.forget(file.id)
    try:
        await _discard(ctx, file)
    finally:
        if partial is not None:
            await asyncio.to_thread(partial.close)


def http_date(value: datetime | None) -> str | None:
    from email.utils import format_datetime

    return format_datetime(value, usegmt=True) if value else None
