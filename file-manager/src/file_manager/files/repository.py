"""Every query on stored files, links and the access log."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Select, delete, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from file_manager.files.schemas import FileFilters
from file_manager.models import DownloadLink, FileStatus, OutboxEvent, StoredFile


def _live() -> Any:
    return StoredFile.deleted_at.is_(None)


async def get_live(session: AsyncSession, file_id: uuid.UUID) -> StoredFile | None:
    found = await session.get(StoredFile, file_id)
    return found if found is not None and found.deleted_at is None else None


async def get_for_update(session: AsyncSession, file_id: uuid.UUID) -> StoredFile | None:
    stmt = select(StoredFile).where(StoredFile.id == file_id).with_for_update()
    return (await session.scalars(stmt)).one_or_none()


def listing(owner_id: uuid.UUID | None, filters: FileFilters) -> Select[Any]:
    stmt = select(StoredFile).where(_live())
    if owner_id is not None:
        stmt = stmt.where(StoredFile.owner_id == owner_id)
    if filters.kind is not None:
        stmt = stmt.where(StoredFile.kind == filters.kind)
    if filters.job_id is not None:
        stmt = stmt.where(StoredFile.job_id == filters.job_id)
    if filters.status is not None:
        stmt = stmt.where(StoredFile.status == filters.status)
    return stmt


async def lock_owner(session: AsyncSession, owner_id: uuid.UUID) -> None:
    """Serialise quota decisions of one user across requests and replicas (until commit)."""
    key = int.from_bytes(owner_id.bytes[:8], "big", signed=True)
    await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})


async def usage_bytes(session: AsyncSession, owner_id: uuid.UUID) -> int:
    """Bytes counted against the quota: stored files and the full length of tus uploads."""
    stmt = select(func.coalesce(func.sum(StoredFile.size_bytes), 0)).where(
        StoredFile.owner_id == owner_id,
        _live(),
        StoredFile.content_deleted_at.is_(None),
    )
    return int(await session.scalar(stmt) or 0)


async def claim_validation(
    session: AsyncSession, file_id: uuid.UUID, now: datetime, lease_until: datetime
) -> bool:
    """Take the validation lease of a file (one worker in the whole fleet runs it)."""
    stmt = (
        update(StoredFile)
        .where(
            StoredFile.id == file_id,
            StoredFile.status == FileStatus.VALIDATING,
            _live(),
            (StoredFile.validation_lease_until.is_(None))
            | (StoredFile.validation_lease_until < now),
        )
        .values(validation_lease_until=lease_until)
        .returning(StoredFile.id)
    )
    return (await session.execute(stmt)).first() is not None


async def validation_backlog(session: AsyncSession, now: datetime, limit: int) -> list[uuid.UUID]:
    """Files waiting for validation whose lease is free (never taken, or its holder died)."""
    stmt = (
        select(StoredFile.id)
        .where(
            StoredFile.status == FileStatus.VALIDATING,
            _live(),
            (StoredFile.validation_lease_until.is_(None))
            | (StoredFile.validation_lease_until < now),
        )
        .order_by(StoredFile.created_at)
        .limit(limit)
    )
    return list((await session.scalars(stmt)).all())


async def get_link(session: AsyncSession, link_id: uuid.UUID) -> DownloadLink | None:
    return await session.get(DownloadLink, link_id)


async def links_of(session: AsyncSession, file_id: uuid.UUID) -> list[DownloadLink]:
    stmt = (
        select(DownloadLink)
        .where(DownloadLink.file_id == file_id)
        .order_by(DownloadLink.created_at, DownloadLink.id)
    )
    return list((await session.scalars(stmt)).all())


async def spend_single_use(session: AsyncSession, link_id: uuid.UUID, now: datetime) -> bool:
    """Mark a single-use link used; False if another request used it first."""
    stmt = (
        update(DownloadLink)
        .where(DownloadLink.id == link_id, DownloadLink.used_at.is_(None))
        .values(used_at=now)
        .returning(DownloadLink.id)
    )
    return (await session.execute(stmt)).first() is not None


async def delete_events_of(session: AsyncSession, file_id: uuid.UUID) -> None:
    """Drop the outbox events about a file that is removed before anyone heard of it."""
    await session.execute(
        delete(OutboxEvent).where(OutboxEvent.payload["file_id"].astext == str(file_id))
    )
