"""Dead letters, for admins: the entries monitoring could not process, and why."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Response, status
from pydantic import BaseModel
from sqlalchemy import select

from fedimpute_shared.db import SessionDep
from fedimpute_shared.pagination import CodecDep, Page, PageParams, page_params, paginate
from fedimpute_shared.problems import NotFound, problem_responses
from monitoring_service.dependencies import Admin
from monitoring_service.models import DeadLetter

router = APIRouter(prefix="/monitoring/dead-letters", tags=["dead letters"])

_SECRET_WORDS = ("token", "secret", "password", "key", "credential")


class DeadLetterOut(BaseModel):
    id: uuid.UUID
    stream_id: str
    event_id: str | None
    event_type: str | None
    reason: str
    deliveries: int
    fields: dict[str, str]
    created_at: datetime


def _out(letter: DeadLetter) -> DeadLetterOut:
    """The entry as read, except a payload: an unknown event may carry anything, and only
    its envelope is needed to see what went wrong (the reason says it)."""
    fields = {k: v for k, v in letter.fields.items() if k != "payload"}
    fields = {
        k: "***" if any(w in k.lower() for w in _SECRET_WORDS) else v for k, v in fields.items()
    }
    return DeadLetterOut(
        id=letter.id,
        stream_id=letter.stream_id,
        event_id=letter.event_id,
        event_type=letter.event_type,
        reason=letter.reason,
        deliveries=letter.deliveries,
        fields=fields,
        created_at=letter.created_at,
    )


@router.get("", summary="Events that could not be processed, newest first")
async def list_dead_letters(
    session: SessionDep,
    admin: Admin,
    codec: CodecDep,
    page: Annotated[PageParams, Depends(page_params)],
) -> Page[DeadLetterOut]:
    rows, cursor = await paginate(
        session,
        select(DeadLetter),
        order_by=[DeadLetter.created_at, DeadLetter.id],
        params=page,
        codec=codec,
        descending=True,
    )
    return Page(items=[_out(row) for row in rows], next_cursor=cursor)


@router.delete(
    "/{letter_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Discard a dead letter",
    responses=problem_responses(NotFound),
)
async def delete_dead_letter(letter_id: uuid.UUID, session: SessionDep, admin: Admin) -> Response:
    letter = await session.get(DeadLetter, letter_id)
    if letter is None:
        raise NotFound("no such dead letter")
    await session.delete(letter)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
