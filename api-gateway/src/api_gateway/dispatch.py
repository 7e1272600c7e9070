"""Proxied requests take a short road: past FastAPI's middleware stack, not past its behaviour.

Through FastAPI every proxied request would pass about ten layers (server errors, telemetry,
two body limits, CORS, observability, exception handling, an exit stack, the router trying each
route in turn before the catch-all) — a tenth of the gateway's CPU per request on a hot path
where the proxy does all the real work itself (``bench/gateway.py --py-spy``).
:func:`proxy_first` puts a dispatcher at the top of the app's middleware stack: a plain HTTP
request for ``/api/...`` that is not one of the gateway's own routes goes straight to

    CORS -> request id, access log, metrics -> problem+json errors -> the proxy

built from the very same pieces the FastAPI stack uses (``CORSMiddleware`` with the same
options, the shared ``ObservabilityMiddleware`` with the app's metrics, the app's own exception
handlers), so answers, headers, logs and metrics are the same either way. Everything else (the
gateway's own pages, ``/health``, ``/metrics``, WebSockets, odd paths, the lifespan) goes
through the whole FastAPI stack as before.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fedimpute_shared.observability import ObservabilityMiddleware
from fedimpute_shared.problems import ProblemError

PROXIED_PREFIX = "/api/"

ExceptionHandler = Callable[[Request, Exception], Any]


class ProblemBoundary:
    """Turns what the proxy raises before answering into the app's problem responses (its
    ``ProblemError`` handler, and its catch-all handler, which logs, for anything else)."""

    def __init__(self, app: ASGIApp, handlers: Mapping[Any, ExceptionHandler]) -> None:
        self.app = app
        self._on_problem = handlers[ProblemError]
        self._on_unexpected = handlers[Exception]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = False

        async def watched(message: Message) -> None:
            nonlocal started
            started = True
            await send(message)

        try:
            await self.app(scope, receive, watched)
        except Exception as exc:
            if started:  # the answer is on its way: all that is left is to cut it short
                raise
            handler = self._on_problem if isinstance(exc, ProblemError) else self._on_unexpected
            response = await handler(Request(scope, receive), exc)
            await response(scope, receive, send)


class _ProxyFirst:
    def __init__(self, proxied: ASGIApp, rest: ASGIApp, own_paths: frozenset[str]) -> None:
        self._proxied = proxied
        self._rest = rest
        self._own_paths = own_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path: str = scope["path"]
            if path.startswith(PROXIED_PREFIX) and path not in self._own_paths:
                await self._proxied(scope, receive, send)
                return
        await self._rest(scope, receive, send)


def own_api_paths(app: FastAPI) -> frozenset[str]:
    """The gateway's own routes under ``/api/`` (its merged OpenAPI document): exact paths, so
    the dispatcher decides with one set lookup."""
    own = set()
    for route in app.router.routes:
        path = getattr(route, "path", "")
        if not path.startswith(PROXIED_PREFIX) or path == "/{path:path}":
            continue
        if not isinstance(route, Route) or "{" in path:
            raise RuntimeError(f"the gateway's own route {path} must be a fixed HTTP path")
        own.add(path)
    return frozenset(own)


def proxy_first(app: FastAPI, proxy: ASGIApp, cors: Mapping[str, Any]) -> None:
    """Serve proxied ``/api/...`` requests from the short stack (see the module docstring);
    call once every route and exception handler is in place."""
    proxied = CORSMiddleware(
        ObservabilityMiddleware(
            ProblemBoundary(proxy, app.exception_handlers), metrics=app.state.metrics
        ),
        **cors,
    )
    own_paths = own_api_paths(app)
    build = app.build_middleware_stack

    def build_middleware_stack() -> ASGIApp:
        return _ProxyFirst(proxied, build(), own_paths)

    app.build_middleware_stack = build_middleware_stack  # type: ignore[method-assign]
