"""The request body size limit every service has (``MAX_BODY_BYTES``; pure ASGI).

Most routes take small JSON bodies. A body announced larger than the limit is refused at once
with a 413 problem; a body without a length (chunked) is read up to the limit and refused as
soon as it passes it, so a client can never make a service buffer more than the limit.

Routes that read a large body themselves, as a stream with limits of their own (uploads, the
gateway's proxy), are marked with :func:`streams_body` and pass untouched.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fedimpute_shared.problems import PayloadTooLarge, problem_response

__all__ = ["BodySizeLimit", "streams_body"]

F = TypeVar("F", bound=Callable[..., Any])
_MARK = "__fedimpute_streams_body__"
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


def streams_body(endpoint: F) -> F:
    """Mark a route's endpoint as reading its (large) body itself: the body limit skips it.

    Put it under the route decorator (``@router.post(...)`` then ``@streams_body``).
    """
    setattr(endpoint, _MARK, True)
    return endpoint


class BodySizeLimit:
    """The limit; ``routes`` gives the app's routes (read at the first request, when every
    route is in place) to find the ones marked with :func:`streams_body`."""

    def __init__(
        self, app: ASGIApp, max_bytes: int, routes: Callable[[], Sequence[BaseRoute]]
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self._routes = routes
        self._exempt: list[BaseRoute] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self._streams_body(scope):
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await self._refuse(scope, receive, send)
            return
        messages: list[Message] = []
        received = 0
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                await self._refuse(scope, receive, send)
                return
            if not message.get("more_body", False):
                break
        await self.app(scope, _replay(messages, receive), send)

    def _streams_body(self, scope: Scope) -> bool:
        if scope.get("method") not in _BODY_METHODS:
            return False
        if self._exempt is None:
            self._exempt = [
                route
                for route in self._routes()
                if getattr(getattr(route, "endpoint", None), _MARK, False)
            ]
        return any(route.matches(scope)[0] is Match.FULL for route in self._exempt)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        error = PayloadTooLarge(
            f"the request body exceeds the limit of {self.max_bytes} bytes",
            limit_bytes=self.max_bytes,
        )
        response = problem_response(error.to_problem(scope.get("path")), {"Connection": "close"})
        await response(scope, receive, send)


def _content_length(scope: Scope) -> int | None:
    for key, value in scope.get("headers", []):
        if key == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _replay(messages: list[Message], receive: Receive) -> Receive:
    pending = list(messages)

    async def replayed() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replayed
