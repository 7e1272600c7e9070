"""FastAPI dependencies: who may do what, and the lifespan resources handlers need."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from fedimpute_shared.auth import CurrentUser, Principal
from fedimpute_shared.pagination import CursorCodec
from fedimpute_shared.permissions import Scope
from fedimpute_shared.problems import Forbidden
from file_manager.config import Settings
from file_manager.storage import Storage
from file_manager.validation.queue import ValidationQueue

_PREFIX = re.compile(r"^(/[A-Za-z0-9._~-]+)*$")


async def _reader(user: CurrentUser) -> Principal:
    if not user.has_scope(Scope.FILES_READ):
        raise Forbidden("this token lacks the scope files:read")
    return user


async def _writer(user: CurrentUser) -> Principal:
    if not user.has_scope(Scope.FILES_WRITE):
        raise Forbidden("this token lacks the scope files:write")
    return user


def _settings(request: Request) -> Settings:
    settings: Settings = request.state.settings
    return settings


def _storage(request: Request) -> Storage:
    storage: Storage = request.state.storage
    return storage


def _queue(request: Request) -> ValidationQueue:
    queue: ValidationQueue = request.state.validation_queue
    return queue


def _codec(request: Request) -> CursorCodec:
    codec: CursorCodec = request.state.cursor_codec
    return codec


def _sessionmaker(request: Request) -> async_sessionmaker[AsyncSession]:
    maker: async_sessionmaker[AsyncSession] = request.state.sessionmaker
    return maker


def public_base(request: Request, settings: Settings) -> str:
    """The path clients reach ``/files`` at: ``X-Forwarded-Prefix`` (set by the gateway) +
    ``/files`` when present and well formed, else ``PUBLIC_BASE_PATH``."""
    prefix = request.headers.get("x-forwarded-prefix")
    if prefix is not None and _PREFIX.fullmatch(prefix.rstrip("/")):
        return prefix.rstrip("/") + "/files"
    return settings.public_base_path


Reader = Annotated[Principal, Depends(_reader)]
Writer = Annotated[Principal, Depends(_writer)]
SettingsDep = Annotated[Settings, Depends(_settings)]
StorageDep = Annotated[Storage, Depends(_storage)]
QueueDep = Annotated[ValidationQueue, Depends(_queue)]
CodecDep = Annotated[CursorCodec, Depends(_codec)]
SessionmakerDep = Annotated[async_sessionmaker[AsyncSession], Depends(_sessionmaker)]
