"""Retention: warn before expiry, delete expired files, drop abandoned tus uploads, sweep
orphaned bytes.

Each step claims a batch of rows with ``FOR UPDATE SKIP LOCKED`` inside its own transaction, so
any number of replicas can run the reaper at once: a row is handled by exactly one of them.
Deleting bytes is idempotent, so a crash between the delete and the commit only means the next
run marks the row.

The database decides first and bytes follow (a deletion commits, then removes the bytes; a tus
upload commits its completion, then renames the partial upload into place), so a crash in
between leaves bytes behind. The orphan sweep, older than ``ORPHAN_GRACE_SECONDS``, removes
partial uploads no upload in progress owns and objects no live file owns, and finishes the
rename of a completed upload whose object is missing.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from fedimpute_shared.db import session_scope, utcnow
from fedimpute_shared.events import FileExpiring, add_to_outbox
from file_manager.config import Settings
from file_manager.files import access
from file_manager.models import AccessAction, FileStatus, OutboxEvent, StoredFile
from file_manager.storage import LocalStorage, Storage
from file_manager.validation.service import PRODUCER

logger = logging.getLogger(__name__)
SYSTEM_ACTOR = "system:reaper"


@dataclass
class ReaperRun:
    warned: int = 0
    expired: int = 0
    abandoned: int = 0
    leftovers: int = 0
    orphans: int = 0  # bytes no live file or upload owned, removed
    repaired: int = 0  # completed tus uploads renamed into place after a crash


@dataclass
class Reaper:
    sessionmaker: async_sessionmaker[AsyncSession]
    storage: Storage
    settings: Settings

    async def run_once(self) -> ReaperRun:
        result = ReaperRun()
        while batch := await self._warn_batch():
            result.warned += batch
        while batch := await self._expire_batch():
            result.expired += batch
        while batch := await self._abandoned_batch():
            result.abandoned += batch
        result.leftovers = await asyncio.to_thread(self._sweep_tmp)
        await self._sweep_orphans(result)
        if any(vars(result).values()):
            logger.info("reaper run", extra={"reaper": result.__dict__})
        return result

    def _claim(self, *conditions: object) -> object:
        return (
            select(StoredFile)
            .where(StoredFile.deleted_at.is_(None), *conditions)  # type: ignore[arg-type]
            .order_by(StoredFile.expires_at)
            .limit(self.settings.reaper_batch_size)
            .with_for_update(skip_locked=True)
        )

    async def _warn_batch(self) -> int:
        now = utcnow()
        horizon = now + timedelta(hours=self.settings.expiry_warning_hours)
        async with session_scope(self.sessionmaker) as session:
            rows = await self._rows(
                session,
                StoredFile.expires_at.is_not(None),
                StoredFile.expires_at <= horizon,
                StoredFile.expires_at > now,
                StoredFile.expiry_warned_at.is_(None),
                StoredFile.content_deleted_at.is_(None),
            )
            for file in rows:
                assert file.expires_at is not None
                file.expiry_warned_at = now
                await add_to_outbox(
                    session,
                    OutboxEvent,
                    FileExpiring(
                        producer=PRODUCER,
                        file_id=file.id,
                        owner_id=file.owner_id,
                        filename=file.filename,
                        expires_at=file.expires_at,
                    ),
                )
            return len(rows)

    async def _expire_batch(self) -> int:
        now = utcnow()
        async with session_scope(self.sessionmaker) as session:
            rows = await self._rows(
                session,
                StoredFile.expires_at.is_not(None),
                StoredFile.expires_at <= now,
                StoredFile.status != FileStatus.UPLOADING,
            )
            for file in rows:
                await self.storage.delete(file.storage_key)
                if file.index_storage_key:
                    await self.storage.delete(file.index_storage_key)
                file.deleted_at = now
                file.content_deleted_at = file.content_deleted_at or now
                file.deletion_reason = "expired"
                access.record(session, file, SYSTEM_ACTOR, AccessAction.EXPIRE)
            return len(rows)

    async def _abandoned_batch(self) -> int:
        now = utcnow()
        async with session_scope(self.sessionmaker) as session:
            rows = await self._rows(
                session,
                StoredFile.status == FileStatus.UPLOADING,
                StoredFile.upload_expires_at.is_not(None),
                StoredFile.upload_expires_at <= now,
            )
            for file in rows:
                await self.storage.delete_partial(file.storage_key)
                await session.delete(file)  # it never was a file: no row remains
            return len(rows)

    async def _rows(self, session: AsyncSession, *conditions: object) -> list[StoredFile]:
        stmt = self._claim(*conditions)
        return list((await session.scalars(stmt)).all())  # type: ignore[call-overload]

    async def _sweep_orphans(self, result: ReaperRun) -> None:
        if not isinstance(self.storage, LocalStorage):
            return
        storage = self.storage
        older_than = time.time() - self.settings.orphan_grace_seconds
        # Every partial upload (a completed one is renamed at once, whatever its age; only
        # removals wait for the grace period).
        partials = await asyncio.to_thread(storage.stale_partials, float("inf"))
        for batch in _batches(partials, 500):
            rows = await self._rows_by_key([key for key, _ in batch])
            for key, path in batch:
                row = rows.get(key)
                if row is not None and row.deleted_at is None:
                    if row.status is FileStatus.UPLOADING:
                        continue  # still open: the abandoned-upload step owns it
                    if await asyncio.to_thread(storage.finish_interrupted_rename, key):
                        result.repaired += 1
                        logger.warning("finished the interrupted rename of upload %s", row.id)
                        continue
                if path.exists() and path.stat().st_mtime < older_than:
                    await asyncio.to_thread(path.unlink, True)
                    result.orphans += 1
        objects = await asyncio.to_thread(storage.stale_objects, older_than)
        for batch in _batches(objects, 500):
            live = await self._live_keys([key for key, _ in batch])
            for key, path in batch:
                if key not in live:
                    await asyncio.to_thread(path.unlink, True)
                    result.orphans += 1

    async def _rows_by_key(self, keys: list[str]) -> dict[str, StoredFile]:
        async with session_scope(self.sessionmaker) as session:
            rows = await session.scalars(select(StoredFile).where(StoredFile.storage_key.in_(keys)))
            return {row.storage_key: row for row in rows}

    async def _live_keys(self, keys: list[str]) -> set[str]:
        """Those of ``keys`` that a live file owns (as its bytes or its index)."""
        async with session_scope(self.sessionmaker) as session:
            rows = await session.execute(
                select(StoredFile.storage_key, StoredFile.index_storage_key).where(
                    StoredFile.deleted_at.is_(None),
                    StoredFile.content_deleted_at.is_(None),
                    or_(
                        StoredFile.storage_key.in_(keys),
                        StoredFile.index_storage_key.in_(keys),
                    ),
                )
            )
            return {key for row in rows for key in row if key is not None}

    def _sweep_tmp(self) -> int:
        """Temporary files a crash left (older than a day): nobody can ever claim them."""
        if not isinstance(self.storage, LocalStorage):
            return 0
        stale = self.storage.leftovers(time.time() - 24 * 3600)
        for path in stale:
            path.unlink(missing_ok=True)
        return len(stale)


def _batches(items: list[tuple[str, Path]], size: int) -> list[list[tuple[str, Path]]]:
    return [items[i : i + size] for i in range(0, len(items), size)]
