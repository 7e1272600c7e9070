"""Dependencies on lifespan state: handlers receive the app's resources as typed parameters.

``create_service_app`` yields the shared resources (``settings``, ``sessionmaker``,
``cursor_codec``...) and each service's own (``storage``, ``health_worker``...) as Starlette
lifespan state; :func:`from_state` turns one of them into a dependency, so a service declares::

    SettingsDep = Annotated[Settings, Depends(from_state("settings"))]
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from fedimpute_shared.tasks import BackgroundTasks

__all__ = [
    "SessionmakerDep",
    "TasksDep",
    "from_state",
]


def from_state(name: str) -> Callable[[Request], Awaitable[Any]]:
    """A dependency returning ``request.state.<name>`` (a lifespan state entry).

    ``async`` although it never awaits: FastAPI runs a plain ``def`` dependency in a worker
    thread, and the hand-over to the thread pool and back cost more than the whole lookup
    (about a fifth of a small request's CPU, measured with bench/request_cost.py).
    """

    async def get(request: Request) -> Any:
        return getattr(request.state, name)

    get.__name__ = f"state_{name}"
    return get


SessionmakerDep = Annotated[async_sessionmaker[AsyncSession], Depends(from_state("sessionmaker"))]
"""The session factory, for work that must commit apart from the request's session (an audit
entry of a refused request, a streamed upload finished in its own transaction)."""

TasksDep = Annotated[BackgroundTasks, Depends(from_state("tasks"))]
"""The app's background tasks: ``tasks.spawn(name, coroutine)`` runs work a request asked for."""
