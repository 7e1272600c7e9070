"""Keyset pagination with signed cursors: ``?limit=&cursor=`` → ``{"items", "next_cursor"}``.

A cursor holds the sort key of the last item of a page, JSON-encoded and signed with HMAC-SHA256
(``cursor_secret``), so a client cannot forge or edit one: a tampered cursor is a 400, never an
arbitrary query. Keyset (``WHERE (a, b) > (:a, :b)``) instead of OFFSET keeps deep pages fast and
stable while rows are added.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Depends, Query
from pydantic import BaseModel
from sqlalchemy import Select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from fedimpute_shared.deps import from_state
from fedimpute_shared.problems import BadRequest

__all__ = [
    "DEFAULT_LIMIT",
    "MAX_LIMIT",
    "CodecDep",
    "CursorCodec",
    "Page",
    "PageParams",
    "after_values",
    "page_of",
    "page_params",
    "paginate",
]

T = TypeVar("T")
MAX_LIMIT = 200
DEFAULT_LIMIT = 50


class Page(BaseModel, Generic[T]):
    """A page of results; ``next_cursor`` is null on the last page."""

    items: list[T]
    next_cursor: str | None = None


class PageParams(BaseModel):
    limit: int
    cursor: str | None


async def page_params(  # async: no worker-thread hop (see deps.from_state)
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Items per page.")] = DEFAULT_LIMIT,
    cursor: Annotated[
        str | None, Query(max_length=1024, description="`next_cursor` of the previous page.")
    ] = None,
) -> PageParams:
    return PageParams(limit=limit, cursor=cursor)


class CursorCodec:
    """Signs and verifies cursors with one secret."""

    def __init__(self, secret: str) -> None:
        self._key = secret.encode()

    def encode(self, values: Sequence[Any]) -> str:
        payload = json.dumps([_to_json(v) for v in values], separators=(",", ":")).encode()
        signature = hmac.new(self._key, payload, hashlib.sha256).digest()[:16]
        return _b64(payload) + "." + _b64(signature)

    def decode(self, cursor: str) -> list[Any]:
        try:
            payload_b64, signature_b64 = cursor.split(".", 1)
            payload, signature = _unb64(payload_b64), _unb64(signature_b64)
        except ValueError:
            raise BadRequest("the pagination cursor is malformed") from None
        expected = hmac.new(self._key, payload, hashlib.sha256).digest()[:16]
        if not hmac.compare_digest(signature, expected):
            raise BadRequest("the pagination cursor is invalid or was tampered with")
        values = json.loads(payload)
        if not isinstance(values, list):
            raise BadRequest("the pagination cursor is malformed")
        return values


async def paginate(
    session: AsyncSession,
    stmt: Select[Any],
    *,
    order_by: Sequence[InstrumentedAttribute[Any]],
    params: PageParams,
    codec: CursorCodec,
    descending: bool = False,
    plain_rows: bool = False,
) -> tuple[list[Any], str | None]:
    """Run ``stmt`` (a select of one entity) one page at a time, ordered by ``order_by``
    (ascending, or all columns descending: newest first for histories).

    The last ``order_by`` column must be unique (the id) so the order is total.

    ``plain_rows``: for a read-only listing, select the entity's columns and return plain rows
    (attribute access by the same names, values converted alike) instead of ORM objects: no
    identity map, no instance state; a 20-row page of a wide model loaded twice as fast. The
    caller must only read attributes that are columns (no relationships, no methods).
    """
    if plain_rows:
        entity = stmt.column_descriptions[0]["entity"]
        columns = [getattr(entity, attr.key) for attr in entity.__mapper__.column_attrs]
        stmt = stmt.with_only_columns(*columns)
    values = after_values(params, codec, order_by)
    if values is not None:
        key, after = tuple_(*order_by), tuple_(*values)
        stmt = stmt.where(key < after if descending else key > after)
    ordering = [column.desc() for column in order_by] if descending else list(order_by)
    stmt = stmt.order_by(*ordering).limit(params.limit + 1)
    result = await (session.execute(stmt) if plain_rows else session.scalars(stmt))
    return page_of(list(result.all()), params, codec, lambda row: _sort_key(row, order_by))


def after_values(
    params: PageParams, codec: CursorCodec, order_by: Sequence[InstrumentedAttribute[Any]]
) -> list[Any] | None:
    """The sort key the page starts after (the cursor's values, typed like ``order_by``'s
    columns), or None for the first page; a forged or foreign cursor is a 400."""
    if not params.cursor:
        return None
    raw = codec.decode(params.cursor)
    if len(raw) != len(order_by):
        raise BadRequest("the pagination cursor does not belong to this listing")
    return [_from_json(column, value) for column, value in zip(order_by, raw, strict=True)]


def page_of(
    rows: list[Any],
    params: PageParams,
    codec: CursorCodec,
    key: Callable[[Any], Sequence[Any]],
) -> tuple[list[Any], str | None]:
    """The page in ``rows`` (fetched with ``LIMIT limit + 1``: one more row means there is a
    next page) and the cursor of that next page (``key`` of its last row, signed)."""
    if len(rows) <= params.limit:
        return rows, None
    rows = rows[: params.limit]
    return rows, codec.encode(key(rows[-1]))


def _sort_key(row: Any, order_by: Sequence[InstrumentedAttribute[Any]]) -> list[Any]:
    """``row``'s values of the ``order_by`` columns (an entity's or a plain row's)."""
    return [getattr(row, column.key) for column in order_by]


def _to_json(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def _from_json(column: InstrumentedAttribute[Any], value: Any) -> Any:
    # Outside the ``try``: a sort column without a Python type is a bug in the caller (a 500),
    # not a bad cursor from the client.
    python_type = column.type.python_type
    if value is None or isinstance(value, python_type):
        return value
    # Cursors only ever hold JSON scalars (see ``_to_json``); anything else (a list, an object)
    # would reach the type's constructor and fail there with an unrelated error.
    if not isinstance(value, str | int | float):
        raise BadRequest("the pagination cursor is malformed")
    try:
        if python_type is datetime:
            return datetime.fromisoformat(str(value))
        return python_type(value)
    except (ValueError, TypeError):
        raise BadRequest("the pagination cursor is malformed") from None


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, TypeError) as exc:
        raise ValueError("bad base64") from exc


CodecDep = Annotated[CursorCodec, Depends(from_state("cursor_codec"))]
"""The app's cursor codec (from lifespan state), for handlers that paginate."""
