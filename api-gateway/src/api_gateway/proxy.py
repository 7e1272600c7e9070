"""The streaming HTTP proxy: a pure ASGI app behind the gateway's catch-all route.

Bodies are never held whole: the client's body goes upstream as it arrives from ASGI
``receive`` (uvicorn applies back-pressure, and so does the upstream socket), and the upstream's
raw bytes (still compressed, if they were) go out chunk by chunk; a small answer that arrived
whole with its head goes out in one message. The upstream exchange is ``upstream_http.py``'s.
Status, headers (minus hop-by-hop), ``Range`` and ``206`` pass unchanged. A client that goes
away mid-download stops the upstream transfer.

Failures become problems fast, before any byte of a response: every replica benched → 503 with
``Retry-After``; cannot connect → 502; no answer within the route's timeout → 504; an answer
that is not HTTP → 502. Once a response has started, a failure can only cut the connection
(the client sees a short body), which is what a proxy owes it.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import quote

from starlette.types import Message, Receive, Scope, Send

from api_gateway.gateway import Gateway
from api_gateway.headers import client_response_headers, header, upstream_request_headers
from api_gateway.paths import AmbiguousPath, normalise
from api_gateway.routes import Target
from api_gateway.upstream_http import (
    ConnectFailed,
    PoolTimeout,
    UpstreamError,
    UpstreamResponse,
    UpstreamTimeout,
    request_head,
)
from api_gateway.upstreams import NoHealthyUpstream, Upstream, first_reachable
from fedimpute_shared.context import current_request_id, new_request_id
from fedimpute_shared.problems import (
    BadGateway,
    BadRequest,
    GatewayTimeout,
    NotFound,
    PayloadTooLarge,
    ServiceUnavailable,
)
from fedimpute_shared.text import ascii_count

logger = logging.getLogger(__name__)

# Responses up to this size (by Content-Length) are relayed without watching for a client
# disconnect: they are over before it would matter, and the watch costs a task per request.
_SMALL_RESPONSE_BYTES = 256 * 1024


@dataclass(frozen=True, slots=True)
class RouteLabel:
    """What the shared metrics middleware reads as the route template (``scope["route"]``)."""

    path: str


class _BodyTooLarge(Exception):
    pass


class _ClientGone(Exception):
    pass


def resolve(gateway: Gateway, scope: Scope) -> Target:
    """The target of a request, or the 400/404 problem."""
    raw_path = scope.get("raw_path") or quote(scope["path"]).encode()
    try:
        path = normalise(raw_path)
    except AmbiguousPath as exc:
        raise BadRequest(str(exc)) from None
    content_type = header(scope["headers"], b"content-type") or b""
    media = content_type.split(b";", 1)[0].strip().lower()
    json_body = media == b"application/json" or media.endswith(b"+json")
    method = scope.get("method", "GET")
    target = gateway.routes.resolve(method, path, json_body=json_body)
    if target is None:
        raise NotFound("no public API route matches this path")
    scope["route"] = RouteLabel(target.label)
    return target


def _upstream_target(target: Target, query_string: bytes) -> bytes:
    """The request target sent upstream (below the replica's base path)."""
    path = target.upstream_path.encode("ascii")
    return path + b"?" + query_string if query_string else path


def _content_length(scope: Scope) -> int | None:
    value = header(scope["headers"], b"content-length")
    if value is None:
        return None
    try:
        length = int(value)
    except ValueError:
        raise BadRequest("Content-Length is not a number") from None
    if length < 0:
        raise BadRequest("Content-Length is negative")
    return length


async def _body_chunks(receive: Receive, limit: int | None) -> AsyncIterator[bytes]:
    """The client's body as it arrives; stops at ``limit`` bytes (413) or a disconnect."""
    received = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _ClientGone
        chunk: bytes = message.get("body", b"")
        received += len(chunk)
        if limit is not None and received > limit:
            raise _BodyTooLarge
        if chunk:
            yield chunk
        if not message.get("more_body", False):
            return


async def proxy_http(gateway: Gateway, scope: Scope, receive: Receive, send: Send) -> None:
    target = resolve(gateway, scope)
    admission = await gateway.admit(scope, target)
    length = _content_length(scope)
    cap = gateway.settings.max_json_body_bytes if target.policy.json_body_cap else None
    if cap is not None and length is not None and length > cap:
        raise _too_large(cap)
    chunked = length is None and header(scope["headers"], b"transfer-encoding") is not None
    body = _body_chunks(receive, cap) if length or chunked else None
    method = scope["method"].encode("ascii")
    target_bytes = _upstream_target(target, scope.get("query_string", b""))
    headers = upstream_request_headers(
        scope["headers"],
        access_token=admission.identity.access_token if admission.identity else None,
        request_id=current_request_id() or new_request_id(),
        client_ip=admission.client_ip,
        scheme=scope.get("scheme", "http"),
    )
    timeouts = gateway.timeouts(target.policy.transfer)

    async def attempt(upstream: Upstream) -> UpstreamResponse:
        try:
            head = request_head(
                method,
                upstream.base_path + target_bytes,
                [(b"host", upstream.host_bytes), *headers],
                chunked=chunked,
            )
        except ValueError as exc:
            raise BadRequest(str(exc)) from None
        return await gateway.connections.request(
            upstream.origin, method, head, body, chunked=chunked, timeouts=timeouts
        )

    try:
        response = await first_reachable(gateway.pools[target.service], gateway.metrics, attempt)
    except _ClientGone:
        return
    except _BodyTooLarge:
        raise _too_large(cap or 0) from None
    except (NoHealthyUpstream, UpstreamError) as exc:
        raise _upstream_problem(gateway, target, exc) from None
    gateway.metrics.proxied.labels(target.service, str(response.status)).inc()
    try:
        await _relay(response, receive, send, admission.rate_headers, method)
    finally:
        response.close()


def _too_large(cap: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"request bodies on this route are limited to {cap} bytes", limit_bytes=cap
    )


def _upstream_problem(gateway: Gateway, target: Target, exc: Exception) -> Exception:
    service = target.service
    errors = gateway.metrics.upstream_errors
    if isinstance(exc, NoHealthyUpstream):
        retry = str(max(1, math.ceil(exc.retry_after)))
        return ServiceUnavailable(
            f"{service} is unavailable; try again shortly", headers={"Retry-After": retry}
        )
    if isinstance(exc, PoolTimeout):
        errors.labels(service, "pool").inc()
        return ServiceUnavailable("the gateway is busy; try again shortly")
    if isinstance(exc, UpstreamTimeout):
        errors.labels(service, "timeout").inc()
        return GatewayTimeout(f"{service} did not answer in time")
    if isinstance(exc, ConnectFailed):  # counted per attempt by first_reachable
        return BadGateway(f"{service} is unreachable")
    errors.labels(service, "protocol").inc()
    logger.warning("bad answer from %s: %s: %s", service, type(exc).__name__, exc)
    return BadGateway(f"{service} sent an invalid response")


async def _relay(
    response: UpstreamResponse,
    receive: Receive,
    send: Send,
    extra_headers: list[tuple[bytes, bytes]],
    method: bytes,
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": response.status,
            "headers": client_response_headers(response.headers) + extra_headers,
        }
    )
    whole = response.buffered_body()
    if whole is not None:  # it all came with the head: one message, no waiting
        await send({"type": "http.response.body", "body": whole, "more_body": False})
        return
    size = ascii_count(response.content_length)
    small = method == b"HEAD" or (size is not None and size <= _SMALL_RESPONSE_BYTES)
    try:
        if small:
            await _stream_body(response, send)
        else:
            await _stream_body_until_disconnect(response, receive, send)
    except UpstreamError as exc:
        # Headers are out: all we can do is cut the response short (the server closes).
        logger.warning("upstream failed mid-response: %s: %s", type(exc).__name__, exc)


async def _stream_body(response: UpstreamResponse, send: Send) -> None:
    async for chunk in response.body():
        await send({"type": "http.response.body", "body": chunk, "more_body": True})
    await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _stream_body_until_disconnect(
    response: UpstreamResponse, receive: Receive, send: Send
) -> None:
    async def client_left() -> None:
        message: Message = await receive()
        while message["type"] != "http.disconnect":
            message = await receive()

    body = asyncio.ensure_future(_stream_body(response, send))
    watch = asyncio.ensure_future(client_left())
    try:
        await asyncio.wait({body, watch}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (body, watch):
            task.cancel()
        await asyncio.gather(body, watch, return_exceptions=True)
    if body.done() and not body.cancelled() and (error := body.exception()) is not None:
        raise error
