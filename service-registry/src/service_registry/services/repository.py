"""Every query on imputation services."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import (
    BigInteger,
    BindParameter,
    ColumnElement,
    Select,
    bindparam,
    literal_column,
    select,
    tuple_,
)
from sqlalchemy.ext.asyncio import AsyncSession

from fedimpute_shared.db import DriverQuery
from service_registry.models import ImputationService
from service_registry.services.schemas import ServiceFilters

_AnySelect = TypeVar("_AnySelect", bound=Select[*tuple[Any, ...]])

# Each listing filter: the condition it adds, on a bind parameter of the filter's name (so the
# SQL of one combination of filters is the same whatever the values: see listing_keys).
_CONDITIONS: dict[str, Callable[[BindParameter[Any]], ColumnElement[bool]]] = {
    "kind": lambda value: ImputationService.kind == value,
    "is_active": lambda value: ImputationService.is_active == value,  # a NOT NULL column
    "health_status": lambda value: ImputationService.health_status == value,
    "builds": lambda value: ImputationService.supported_builds.contains(value),
    "country": lambda value: ImputationService.country == value,
}


def filter_values(filters: ServiceFilters) -> dict[str, Any]:
    """The filters given, by condition name, as the column compares them."""
    values = {
        "kind": filters.kind,
        "is_active": filters.is_active,
        "health_status": filters.health_status,
        "builds": [filters.build] if filters.build is not None else None,
        "country": filters.country.upper() if filters.country is not None else None,
    }
    return {name: value for name, value in values.items() if value is not None}


def _filtered(
    stmt: _AnySelect, include_deleted: bool, params: dict[str, BindParameter[Any]]
) -> _AnySelect:
    if not include_deleted:
        stmt = stmt.where(ImputationService.deleted_at.is_(None))
    for name, param in params.items():
        stmt = stmt.where(_CONDITIONS[name](param))
    return stmt


def listing(filters: ServiceFilters) -> Select[Any]:
    values = filter_values(filters)
    params: dict[str, BindParameter[Any]] = {name: bindparam(name, values[name]) for name in values}
    return _filtered(select(ImputationService), filters.include_deleted, params)


LISTING_ORDER = (ImputationService.name, ImputationService.id)  # the last one is unique
ROW_VERSION = literal_column("xmin", BigInteger).label("row_version")
"""PostgreSQL's id of the transaction that wrote the row's current version: any change to a
committed row gives it a new one, so (id, row_version) names one committed content."""


@functools.cache
def listing_keys(include_deleted: bool, filters: frozenset[str], after: bool) -> DriverQuery:
    """One page of the listing's keys (id, row version, sort key, what ``at_risk`` reads),
    compiled once per combination of filters: bind ``filter_values``, ``limit`` and, with
    ``after``, ``after_name`` and ``after_id`` (the cursor's)."""
    columns = (ImputationService.id, ROW_VERSION, *LISTING_ORDER[:1])
    stmt = _filtered(
        select(*columns, ImputationService.first_unhealthy_at),
        include_deleted,
        {name: bindparam(name) for name in sorted(filters)},
    )
    if after:
        after_key = tuple_(bindparam("after_name"), bindparam("after_id"))
        stmt = stmt.where(tuple_(*LISTING_ORDER) > after_key)
    return DriverQuery.of(stmt.order_by(*LISTING_ORDER).limit(bindparam("limit")))


@functools.cache
def key_of_one(by_slug: bool) -> DriverQuery:
    """One service's key (id, row version, what ``at_risk`` reads, ``deleted_at``) by ``id``
    or by ``slug``."""
    found_by = ImputationService.slug if by_slug else ImputationService.id
    return DriverQuery.of(
        select(
            ImputationService.id,
            ROW_VERSION,
            ImputationService.first_unhealthy_at,
            ImputationService.deleted_at,
        ).where(found_by == bindparam("key"))
    )


async def by_ids_with_version(session: AsyncSession, ids: list[uuid.UUID]) -> list[Any]:
    """Whole services by id as plain rows (column attributes and ``row_version``)."""
    columns = [getattr(ImputationService, a.key) for a in ImputationService.__mapper__.column_attrs]
    stmt = select(*columns, ROW_VERSION).where(ImputationService.id.in_(ids))
    return list((await session.execute(stmt)).all())


async def get(session: AsyncSession, service_id: uuid.UUID) -> ImputationService | None:
    return await session.get(ImputationService, service_id)


async def is_live(session: AsyncSession, service_id: uuid.UUID) -> bool:
    """The service exists and is not deleted (without loading its 35 columns)."""
    found = await session.scalar(
        select(ImputationService.id).where(
            ImputationService.id == service_id, ImputationService.deleted_at.is_(None)
        )
    )
    return found is not None


async def get_by_slug(session: AsyncSession, slug: str) -> ImputationService | None:
    result = await session.scalars(select(ImputationService).where(ImputationService.slug == slug))
    return result.one_or_none()


async def slug_taken(session: AsyncSession, slug: str) -> bool:
    return await get_by_slug(session, slug) is not None


async def active_services(session: AsyncSession) -> list[ImputationService]:
    """Services the health worker sweeps: active and not deleted."""
    result = await session.scalars(
        select(ImputationService)
        .where(ImputationService.is_active.is_(True), ImputationService.deleted_at.is_(None))
        .order_by(ImputationService.id)
    )
    return list(result.all())
