"""Dead letters, for admins: what could not be processed and why; replay once fixed."""

from __future__ import annotations

import contextlib
import json
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response, status

from fedimpute_shared.db import SessionDep
from fedimpute_shared.pagination import CodecDep, Page, PageParams, page_params, paginate
from fedimpute_shared.problems import NotFound, ServiceUnavailable, problem_responses
from notification_service.dependencies import Admin
from notification_service.events import repository
from notification_service.events.processor import EventProcessor
from notification_service.events.schemas import DeadLetterOut, ReplayOut
from notification_service.models import DeadLetter
from notification_service.templates.context import SECRET_WORDS

router = APIRouter(prefix="/notifications/dead-letters", tags=["dead letters"])


def _mask(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            k: "***" if any(w in str(k).lower() for w in SECRET_WORDS) else _mask(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_mask(v) for v in value]
    return value


def _out(letter: DeadLetter) -> DeadLetterOut:
    """Fields as stored, with any secret-named payload field masked (a sealed token is
    useless to anyone but this service, and still not shown)."""
    fields = dict(letter.fields)
    with contextlib.suppress(ValueError):
        fields["payload"] = json.dumps(_mask(json.loads(fields.get("payload", ""))))
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


async def _letter(session: SessionDep, letter_id: uuid.UUID) -> DeadLetter:
    letter = await session.get(DeadLetter, letter_id)
    if letter is None:
        raise NotFound("no such dead letter")
    return letter


@router.get("", summary="Events that could not be processed, newest first")
async def list_dead_letters(
    session: SessionDep,
    admin: Admin,
    codec: CodecDep,
    page: Annotated[PageParams, Depends(page_params)],
    event_type: str | None = None,
) -> Page[DeadLetterOut]:
    rows, cursor = await paginate(
        session,
        repository.dead_letters(event_type),
        order_by=[DeadLetter.created_at, DeadLetter.id],
        params=page,
        codec=codec,
        descending=True,
    )
    return Page(items=[_out(row) for row in rows], next_cursor=cursor)


@router.get("/{letter_id}", summary="One dead letter", responses=problem_responses(NotFound))
async def get_dead_letter(letter_id: uuid.UUID, session: SessionDep, admin: Admin) -> DeadLetterOut:
    return _out(await _letter(session, letter_id))


@router.post(
    "/{letter_id}/replay",
    summary="Process a dead letter again (after the cause was fixed); it leaves the list",
    responses=problem_responses(NotFound, ServiceUnavailable),
)
async def replay_dead_letter(
    letter_id: uuid.UUID, session: SessionDep, admin: Admin, request: Request
) -> ReplayOut:
    letter = await _letter(session, letter_id)
    processor: EventProcessor = request.state.processor
    fields = {k.encode(): v.encode() for k, v in letter.fields.items()}
    try:
        outcome = await processor.process(letter.stream_id, fields)
    except Exception as exc:  # kept for another try; the cause is in the logs
        raise ServiceUnavailable(f"processing failed again ({type(exc).__name__})") from exc
    await session.delete(letter)
    return ReplayOut(outcome=outcome)


@router.delete(
    "/{letter_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Discard a dead letter",
    responses=problem_responses(NotFound),
)
async def delete_dead_letter(letter_id: uuid.UUID, session: SessionDep, admin: Admin) -> Response:
    await session.delete(await _letter(session, letter_id))
    return Response(status_code=status.HTTP_204_NO_CONTENT)
