"""The access log: every upload, download, link and deletion, in a table and as a log line."""

from __future__ import annotations

import logging
import uuid

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession

from fedimpute_shared.auth import Principal
from fedimpute_shared.context import current_request_id
from file_manager.models import AccessAction, FileAccessLog, StoredFile

logger = logging.getLogger("file_manager.access")


def actor_of(principal: Principal) -> str:
    """``user:<id>`` for a user, ``service:<name>`` for a service token."""
    return principal.subject if principal.is_service else f"user:{principal.subject}"


def record(
    session: AsyncSession,
    file: StoredFile,
    actor: str,
    action: AccessAction,
    *,
    request: Request | None = None,
    size: int | None = None,
    detail: str | None = None,
    on_behalf_of: uuid.UUID | None = None,
) -> None:
    """Stage one access-log row (committed with the request) and write the structured line."""
    client_ip = request.client.host if request is not None and request.client else None
    entry = FileAccessLog(
        file_id=file.id,
        owner_id=file.owner_id,
        actor=actor,
        on_behalf_of=on_behalf_of,
        action=action,
        detail=detail,
        bytes=size,
        request_id=current_request_id(),
        client_ip=client_ip,
    )
    session.add(entry)
    logger.info(
        "file %s %s by %s",
        action.value,
        file.id,
        actor,
        extra={
            "event": "file_access",
            "file_id": str(file.id),
            "owner_id": str(file.owner_id),
            "actor": actor,
            "action": action.value,
            "bytes": size,
            "detail": detail,
        },
    )
