"""Files: ownership checks, the public view, deletion, downloads with ranges, signed links."""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import re
import struct
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from fastapi import Request
from fastapi.responses import Response, StreamingResponse
from sqlalchemy.ext.asyncio import AsyncSession

from fedimpute_shared.auth import Principal
from fedimpute_shared.db import utcnow
from fedimpute_shared.problems import Conflict, Gone, NotFound, RangeNotSatisfiable
from file_manager.config import Settings
from file_manager.files import access, repository
from file_manager.files.schemas import Checksums, FileOut, LinkCreate, LinkCreated, LinkOut
from file_manager.metrics import FileMetrics
from file_manager.models import AccessAction, DownloadLink, FileStatus, StoredFile
from file_manager.names import content_disposition
from file_manager.storage import Storage, StorageError

# ------------------------------------------------------------------ ownership and views

logger = logging.getLogger(__name__)


async def find_owned(
    session: AsyncSession, file_id: uuid.UUID, user: Principal, *, include_uploading: bool = True
) -> StoredFile:
    """The file if ``user`` owns it or is an admin; 404 otherwise (ids must not leak)."""
    file = await repository.get_live(session, file_id)
    if file is None or (file.owner_id != user.user_id and not user.is_admin):
        raise NotFound(f"no file {file_id}")
    if not include_uploading and file.status is FileStatus.UPLOADING:
        raise NotFound(f"no file {file_id}")
    return file


async def find_for_user(
    session: AsyncSession, file_id: uuid.UUID, owner_id: uuid.UUID
) -> StoredFile:
    """For internal calls on a user's behalf: the file only if that user owns it."""
    file = await repository.get_live(session, file_id)
    if file is None or file.owner_id != owner_id or file.status is FileStatus.UPLOADING:
        raise NotFound(f"no file {file_id} for user {owner_id}")
    return file


def to_out(file: StoredFile) -> FileOut:
    return FileOut(
        id=file.id,
        owner_id=file.owner_id,
        filename=file.filename,
        kind=file.kind,
        format=file.format,
        status=file.status,
        content_type=file.content_type,
        size_bytes=file.size_bytes,
        upload_offset=file.upload_offset,
        checksums=Checksums(md5=file.md5, sha256=file.sha256),
        job_id=file.job_id,
        declared_build=file.declared_build,
        has_index=file.index_storage_key is not None,
        content_available=_available(file),
        validation=file.validation_report,
        created_at=file.created_at,
        uploaded_at=file.uploaded_at,
        validated_at=file.validated_at,
        expires_at=file.expires_at,
        upload_expires_at=file.upload_expires_at,
    )


def _available(file: StoredFile) -> bool:
    return file.content_deleted_at is None and file.status is not FileStatus.UPLOADING


async def delete_file(
    session: AsyncSession, storage: Storage, file: StoredFile, actor: str, request: Request | None
) -> None:
    """Mark the row deleted and **commit**, then remove the bytes (and index, or the partial
    upload).

    The order matters: removing bytes first and then failing to commit would leave a file that
    still exists with no content. Committing first means the worst a crash can leave is bytes
    no live file owns, which the reaper's orphan sweep removes.
    """
    uploading, file_id = file.status is FileStatus.UPLOADING, file.id
    keys = [file.storage_key, *([file.index_storage_key] if file.index_storage_key else [])]
    now = utcnow()
    file.deleted_at = now
    file.content_deleted_at = file.content_deleted_at or now
    file.deletion_reason = file.deletion_reason or "deleted"
    access.record(session, file, actor, AccessAction.DELETE, request=request)
    await session.commit()
    try:
        if uploading:
            await storage.delete_partial(keys[0])
        else:
            await storage.delete(keys[0])
        for key in keys[1:]:
            await storage.delete(key)
    except (OSError, StorageError) as exc:  # the orphan sweep will remove them
        logger.warning("bytes of deleted file %s left for the sweep: %s", file_id, exc)


# ------------------------------------------------------------------ downloads

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def etag(file: StoredFile) -> str:
    return f'"{file.sha256}"' if file.sha256 else f'"{file.id.hex}"'


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """One byte range ``(start, end)`` inclusive, None for the whole body; 416 if unsatisfiable.

    Multiple ranges are answered with the whole body (RFC 9110 allows ignoring Range).
    """
    if header is None or "," in header:
        return None
    match = _RANGE.match(header.strip())
    if match is None or match.group(1) == match.group(2) == "":
        return None  # malformed: ignore, as RFC 9110 says
    first, last = match.group(1), match.group(2)
    if first == "":
        length = int(last)
        if length == 0 or size == 0:
            raise _unsatisfiable(size)
        return max(0, size - length), size - 1
    start = int(first)
    end = size - 1 if last == "" else min(int(last), size - 1)
    if start >= size or (last != "" and int(last) < start):
        raise _unsatisfiable(size)
    return start, end


def _unsatisfiable(size: int) -> RangeNotSatisfiable:
    return RangeNotSatisfiable(
        f"the range is outside the file ({size} bytes)",
        headers={"Content-Range": f"bytes */{size}"},
    )


@dataclass(frozen=True)
class Download:
    """What to stream: the object, its size and name, the validators for caching."""

    storage_key: str
    size: int
    filename: str
    content_type: str
    etag: str


def content_download(file: StoredFile) -> Download:
    if not _available(file):
        raise Gone(f"the content of file {file.id} is no longer stored ({file.deletion_reason})")
    return Download(file.storage_key, file.size_bytes, file.filename, file.content_type, etag(file))


def index_download(file: StoredFile) -> Download:
    if file.index_storage_key is None or not _available(file):
        raise NotFound(f"file {file.id} has no tabix index")
    return Download(
        file.index_storage_key,
        -1,
        file.filename + ".tbi",
        "application/octet-stream",
        f'"{file.id.hex}-tbi"',
    )


async def stream_download(
    storage: Storage, download: Download, request: Request, *, head: bool = False
) -> Response:
    """200/206/304/416 with ETag, Accept-Ranges and a safe Content-Disposition."""
    size = download.size
    if size < 0:
        stat = await storage.stat(download.storage_key)
        if stat is None:
            raise NotFound("the object is missing")
        size = stat.size
    headers = {
        "ETag": download.etag,
        "Accept-Ranges": "bytes",
        "Content-Disposition": content_disposition(download.filename),
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "sandbox",
        "Cache-Control": "private, no-cache",
    }
    if_none_match = request.headers.get("if-none-match")
    if if_none_match and download.etag in [t.strip() for t in if_none_match.split(",")]:
        return Response(status_code=304, headers=headers)
    wanted = parse_range(request.headers.get("range"), size)
    if_range = request.headers.get("if-range")
    if wanted is not None and if_range is not None and if_range.strip() != download.etag:
        wanted = None
    status, start, end = 200, 0, size - 1
    if wanted is not None:
        status, (start, end) = 206, wanted
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    headers["Content-Length"] = str(max(0, end - start + 1))
    if head or size == 0:
        return Response(status_code=status, headers=headers, media_type=download.content_type)
    body = storage.read_range(download.storage_key, start, end)
    return StreamingResponse(
        body, status_code=status, headers=headers, media_type=download.content_type
    )


@dataclass(frozen=True)
class ContentReader:
    """Who reads a file's content, for the metric and the access log."""

    via: str  # the downloads metric's label: owner, link, service
    actor: str  # the access log's actor: user:<id>, link:<id>, service:<name>
    action: AccessAction
    on_behalf_of: uuid.UUID | None = None


async def serve_content(
    session: AsyncSession,
    storage: Storage,
    file: StoredFile,
    request: Request,
    metrics: FileMetrics,
    reader: ContentReader,
) -> Response:
    """Stream a file's bytes (HEAD: headers only; Range honoured), and for a real read count
    the download and log the access: the one way every download route serves content."""
    head = request.method == "HEAD"
    response = await stream_download(storage, content_download(file), request, head=head)
    if not head:
        metrics.downloads.labels(reader.via).inc()
        access.record(
            session,
            file,
            reader.actor,
            reader.action,
            request=request,
            size=int(response.headers.get("content-length", 0)),
            detail=response.headers.get("content-range"),
            on_behalf_of=reader.on_behalf_of,
        )
    return response


# ------------------------------------------------------------------ signed links

_LINK = struct.Struct(">16sQ")  # link id, expiry (epoch seconds)


def sign_link(secret: bytes, link_id: uuid.UUID, expires_at: datetime) -> str:
    payload = _LINK.pack(link_id.bytes, int(expires_at.timestamp()))
    mac = hmac.new(secret, b"fm-link-v1" + payload, hashlib.sha256).digest()[:20]
    return _b64(payload + mac)


def verify_link_token(secret: bytes, token: str, now: datetime) -> uuid.UUID:
    """The link id inside a well-signed, unexpired token; 404 for anything else."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (ValueError, TypeError):
        raise NotFound("no such download link") from None
    if len(raw) != _LINK.size + 20:
        raise NotFound("no such download link")
    payload, mac = raw[: _LINK.size], raw[_LINK.size :]
    expected = hmac.new(secret, b"fm-link-v1" + payload, hashlib.sha256).digest()[:20]
    if not hmac.compare_digest(mac, expected):
        raise NotFound("no such download link")
    link_id, expires = _LINK.unpack(payload)
    if expires < now.timestamp():
        raise Gone("this download link has expired")
    return uuid.UUID(bytes=link_id)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


async def create_link(
    session: AsyncSession,
    file: StoredFile,
    body: LinkCreate,
    user: Principal,
    settings: Settings,
    base: str,
    request: Request,
) -> LinkCreated:
    content_download(file)  # refuse links to content that is gone
    if file.status is FileStatus.INVALID and not settings.keep_invalid_files:
        raise Conflict("an invalid file cannot be shared")
    seconds = min(
        body.expires_in_seconds or settings.download_link_default_seconds,
        settings.download_link_max_seconds,
    )
    now = utcnow()
    link = DownloadLink(
        id=uuid.uuid4(),
        file_id=file.id,
        created_by=user.user_id,
        created_at=now,
        expires_at=(now + timedelta(seconds=seconds)).replace(microsecond=0),
        single_use=body.single_use,
    )
    session.add(link)
    detail = f"link {link.id} until {link.expires_at.isoformat()}" + (
        " single-use" if link.single_use else ""
    )
    access.record(
        session,
        file,
        access.actor_of(user),
        AccessAction.LINK_CREATED,
        request=request,
        detail=detail,
    )
    await session.flush()
    token = sign_link(
        settings.download_link_secret.get_secret_value().encode(), link.id, link.expires_at
    )
    return LinkCreated(**link_out(link).model_dump(), url=f"{base}/download/{token}", token=token)


def link_out(link: DownloadLink) -> LinkOut:
    return LinkOut(
        id=link.id,
        file_id=link.file_id,
        expires_at=link.expires_at,
        single_use=link.single_use,
        used_at=link.used_at,
        revoked_at=link.revoked_at,
        created_at=link.created_at,
    )


async def revoke_link(
    session: AsyncSession, file: StoredFile, link_id: uuid.UUID, user: Principal, request: Request
) -> None:
    link = await repository.get_link(session, link_id)
    if link is None or link.file_id != file.id:
        raise NotFound(f"no link {link_id}")
    if link.revoked_at is None:
        link.revoked_at = utcnow()
        access.record(
            session,
            file,
            access.actor_of(user),
            AccessAction.LINK_REVOKED,
            request=request,
            detail=f"link {link.id}",
        )
        await session.flush()


async def resolve_link(
    session: AsyncSession, settings: Settings, token: str, *, consume: bool
) -> tuple[DownloadLink, StoredFile]:
    """The link and file behind a token, after every check; spends a single-use link."""
    now = datetime.now(UTC)
    link_id = verify_link_token(
        settings.download_link_secret.get_secret_value().encode(), token, now
    )
    link = await repository.get_link(session, link_id)
    if link is None:
        raise NotFound("no such download link")
    if link.revoked_at is not None:
        raise Gone("this download link was revoked")
    if link.expires_at <= now:
        raise Gone("this download link has expired")
    if link.single_use and link.used_at is not None:
        raise Gone("this single-use download link was already used")
    file = await repository.get_live(session, link.file_id)
    if file is None:
        raise Gone("the file of this download link was deleted")
    if consume and link.single_use and not await repository.spend_single_use(session, link.id, now):
        raise Gone("this single-use download link was already used")
    return link, file
