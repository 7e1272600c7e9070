"""``GET /services`` and ``GET /services/{id}``, the registry's most requested reads, answered
from renderings kept per row.

Every client and job-processor's pre-flight lists the services, and the services change rarely
(an admin's edit, a health check that changes something). So a page costs one narrow query on
asyncpg (:func:`repository.listing_keys`: each service's id, row version and sort key, in page
order), and each service's JSON is built once per row version and reused
(:class:`RenderedServices`); only services whose row changed since are read whole and rendered
again. Building 20 ``ServiceOut`` from a 35-column table and dumping them was the larger half of
the list's CPU (docs/benchmarks.md, issue 17).

The row version is PostgreSQL's ``xmin``: every committed change to a row gives it a new one,
so a rendering kept under (id, row version) is that row's content, whoever changed it (an API
write, the health worker, a migration, SQL by hand). ``at_risk``, the one field computed from
the clock, is part of the key too. The body is the same JSON as ``Page[ServiceOut]``'s.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from typing import Any

from pydantic import TypeAdapter
from sqlalchemy.ext.asyncio import AsyncSession

from fedimpute_shared.pagination import CursorCodec, PageParams, after_values, page_of
from service_registry.config import Settings
from service_registry.services import repository, service
from service_registry.services.schemas import ServiceFilters, ServiceOut

_SERVICE_JSON = TypeAdapter(ServiceOut)


class RenderedServices:
    """Each service's ``ServiceOut`` JSON, kept for its current row version only.

    At most ``max_entries`` services (one entry each, replaced when the row changes); past
    that the oldest entry goes, so a registry of any size costs bounded memory."""

    def __init__(self, settings: Settings, max_entries: int = 4096) -> None:
        self._settings = settings
        self._max_entries = max_entries
        self._entries: dict[uuid.UUID, tuple[int, bool, bytes]] = {}

    def get(self, key: Mapping[str, Any]) -> bytes | None:
        """The JSON kept for the page key ``key`` (id, row version, first unhealthy time) if
        it is still that row's, else None."""
        entry = self._entries.get(key["id"])
        if entry is None or entry[0] != key["row_version"]:
            return None
        if entry[1] != service.is_at_risk(key["first_unhealthy_at"], self._settings):
            return None
        return entry[2]

    def render(self, row: Any) -> bytes:
        """``row`` (a whole service and its ``row_version``) as JSON, kept for next time."""
        out = service.to_out(row, self._settings)
        body = _SERVICE_JSON.dump_json(out, by_alias=True)  # as FastAPI dumps a response
        self._entries.pop(row.id, None)  # re-inserted last: the oldest entries stay first
        if len(self._entries) >= self._max_entries:
            del self._entries[next(iter(self._entries))]
        self._entries[row.id] = (row.row_version, out.health.at_risk, body)
        return body


async def page_json(
    session: AsyncSession,
    filters: ServiceFilters,
    params: PageParams,
    codec: CursorCodec,
    rendered: RenderedServices,
) -> bytes:
    """One page of services as the JSON of ``Page[ServiceOut]`` (``{"items", "next_cursor"}``).

    Services changed between the keys' query and the read of their whole rows are shown as
    read (the newer content): each statement of a read session sees the latest commits."""
    after = after_values(params, codec, repository.LISTING_ORDER)
    values = repository.filter_values(filters)
    query = repository.listing_keys(filters.include_deleted, frozenset(values), after is not None)
    bind = {**values, "limit": params.limit + 1}
    if after is not None:
        bind["after_name"], bind["after_id"] = after
    keys, cursor = page_of(
        await query.fetch(session, bind), params, codec, lambda key: (key["name"], key["id"])
    )
    items = {key["id"]: rendered.get(key) for key in keys}
    missing = [service_id for service_id, body in items.items() if body is None]
    if missing:
        for row in await repository.by_ids_with_version(session, missing):
            items[row.id] = rendered.render(row)
    bodies = [body for body in items.values() if body is not None]  # None: deleted meanwhile
    next_cursor = json.dumps(cursor).encode()
    return b'{"items":[' + b",".join(bodies) + b'],"next_cursor":' + next_cursor + b"}"


async def one_json(
    session: AsyncSession, id_or_slug: str, include_deleted: bool, rendered: RenderedServices
) -> bytes:
    """One service (by id, or by slug when ``id_or_slug`` is not a UUID) as the JSON of
    ``ServiceOut``; 404 when there is none, or when it is deleted and ``include_deleted`` is
    false (as :func:`service.find`)."""
    try:
        key_value: uuid.UUID | str = uuid.UUID(id_or_slug)
    except ValueError:
        key_value = id_or_slug
    query = repository.key_of_one(by_slug=isinstance(key_value, str))
    keys = await query.fetch(session, {"key": key_value})
    if not keys or (keys[0]["deleted_at"] is not None and not include_deleted):
        raise service.not_found(id_or_slug)
    body = rendered.get(keys[0])
    if body is None:
        rows = await repository.by_ids_with_version(session, [keys[0]["id"]])
        if not rows:  # deleted meanwhile
            raise service.not_found(id_or_slug)
        body = rendered.render(rows[0])
    return body
