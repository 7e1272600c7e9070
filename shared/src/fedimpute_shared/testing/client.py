"""Drive an app in tests exactly as a client would: lifespan run, real HTTP semantics in-process."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from asgi_lifespan import LifespanManager
from fastapi import FastAPI


@asynccontextmanager
async def app_client(
    app: FastAPI, base_url: str = "http://testserver"
) -> AsyncIterator[httpx.AsyncClient]:
    """Start ``app``'s lifespan and yield an ``AsyncClient`` talking to it over ASGI.

    ``raise_app_exceptions=False``: a crash must come back as the 500 problem a real client
    gets, so tests check what users see.
    """
    async with LifespanManager(app, startup_timeout=30, shutdown_timeout=30) as manager:
        transport = httpx.ASGITransport(app=manager.app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url=base_url) as client:
            yield client
