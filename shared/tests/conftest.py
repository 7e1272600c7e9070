"""A small demo service built with create_service_app, against a real migrated Postgres."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI, Request
from pydantic import BaseModel, Field
from sqlalchemy import String, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from fedimpute_shared.app import create_service_app
from fedimpute_shared.auth import CurrentUser, Principal, ServiceCaller, require_admin
from fedimpute_shared.config import ServiceSettings
from fedimpute_shared.db import SessionDep, Timestamps, UUIDPrimaryKey, new_metadata
from fedimpute_shared.events import OutboxEvent, ServiceDeactivated, add_to_outbox
from fedimpute_shared.pagination import CursorCodec, Page, PageParams, page_params, paginate
from fedimpute_shared.problems import Conflict, NotFound
from fedimpute_shared.testing.client import app_client
from fedimpute_shared.testing.database import migrated_database, truncate_all

MIGRATIONS = Path(__file__).parent / "demo_service" / "migrations"


class Base(DeclarativeBase):
    metadata = new_metadata()


class Widget(UUIDPrimaryKey, Timestamps, Base):
    __tablename__ = "widgets"
    name: Mapped[str] = mapped_column(String(100), unique=True)


class Outbox(OutboxEvent, Base):
    pass


class WidgetIn(BaseModel):
    name: str = Field(min_length=1, max_length=100)


class WidgetOut(BaseModel):
    model_config = {"from_attributes": True}
    id: uuid.UUID
    name: str


router = APIRouter()
Admin = Annotated[Principal, Depends(require_admin())]


@router.get("/widgets")
async def list_widgets(
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    params: Annotated[PageParams, Depends(page_params)],
) -> Page[WidgetOut]:
    codec: CursorCodec = request.state.cursor_codec
    rows, cursor = await paginate(
        session, select(Widget), order_by=[Widget.name, Widget.id], params=params, codec=codec
    )
    return Page(items=[WidgetOut.model_validate(r) for r in rows], next_cursor=cursor)


@router.post("/widgets", status_code=201)
async def create_widget(body: WidgetIn, session: SessionDep, user: Admin) -> WidgetOut:
    widget = Widget(name=body.name)
    session.add(widget)
    await add_to_outbox(
        session,
        Outbox,
        ServiceDeactivated(
            producer="demo", service_id=uuid.uuid4(), service_slug=body.name, reason="x"
        ),
    )
    try:
        await session.flush()
    except IntegrityError:
        raise Conflict(f"a widget named {body.name!r} exists") from None
    return WidgetOut.model_validate(widget)


@router.post("/widgets/fail-after-write")
async def fail_after_write(session: SessionDep, user: Admin) -> None:
    session.add(Widget(name="never-committed"))
    await session.flush()
    raise NotFound("rolled back")


@router.get("/widgets/{widget_id}")
async def get_widget(widget_id: uuid.UUID, session: SessionDep, user: CurrentUser) -> WidgetOut:
    widget = await session.get(Widget, widget_id)
    if widget is None:
        raise NotFound("no such widget")
    return WidgetOut.model_validate(widget)


@router.get("/boom")
async def boom() -> None:
    raise RuntimeError("secret internals password=hunter2")


@router.get("/internal/whoami")
async def internal_whoami(caller: ServiceCaller) -> dict[str, str | None]:
    return {"service": caller.service_name}


@pytest.fixture(scope="session")
async def demo_db_url(postgres_admin_url: str) -> AsyncIterator[str]:
    async with migrated_database(postgres_admin_url, "shared-demo", MIGRATIONS) as url:
        yield url


@pytest.fixture
def settings(demo_db_url: str, token_issuer) -> ServiceSettings:
    return ServiceSettings(
        service_name="demo", database_url=demo_db_url, jwks_url=token_issuer.jwks_url
    )


@pytest.fixture
def app(settings: ServiceSettings) -> FastAPI:
    return create_service_app(
        settings, title="Demo", description="demo", routers=[router], migrations_dir=MIGRATIONS
    )


@pytest.fixture
async def client(app: FastAPI, demo_db_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(app) as c:
        yield c
    engine = create_async_engine(demo_db_url)
    await truncate_all(engine)
    await engine.dispose()
