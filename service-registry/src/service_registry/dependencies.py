"""Who may do what in the registry, as FastAPI dependencies.

Reads need a logged-in user whose token carries ``services:read``; writes need the ``admin`` or
``service_admin`` role *and* ``services:write`` (so an admin's narrowly scoped API token cannot
write); hard deletion is for ``admin`` only.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from fedimpute_shared.auth import CurrentUser, Principal
from fedimpute_shared.pagination import CursorCodec
from fedimpute_shared.permissions import Role, Scope
from fedimpute_shared.problems import Forbidden
from service_registry.config import Settings

WRITER_ROLES = (Role.ADMIN, Role.SERVICE_ADMIN)


async def _reader(user: CurrentUser) -> Principal:
    if not user.has_scope(Scope.SERVICES_READ):
        raise Forbidden("this token lacks the scope services:read")
    return user


async def _writer(user: CurrentUser) -> Principal:
    if not user.has_role(*WRITER_ROLES):
        raise Forbidden("changing the registry needs the role admin or service_admin")
    if not user.has_scope(Scope.SERVICES_WRITE):
        raise Forbidden("this token lacks the scope services:write")
    return user


def _settings(request: Request) -> Settings:
    settings: Settings = request.state.settings
    return settings


def _codec(request: Request) -> CursorCodec:
    codec: CursorCodec = request.state.cursor_codec
    return codec


Reader = Annotated[Principal, Depends(_reader)]
Writer = Annotated[Principal, Depends(_writer)]
SettingsDep = Annotated[Settings, Depends(_settings)]
CodecDep = Annotated[CursorCodec, Depends(_codec)]
