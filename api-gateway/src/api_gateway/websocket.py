"""WebSocket proxying for ``/api/notifications/...`` (the notification service's live push).

The client is authenticated and rate-limited *before* the upgrade is accepted: a refused
client gets a plain HTTP 400/401/403/404/429 problem (the ASGI ``websocket.http.response``
extension) or, on servers without it, a close that uvicorn turns into a 403. An access token
is never taken from a URL (it would end up in logs and browser histories): ``?access_token=``
is refused. Browsers, which cannot set ``Authorization`` on a WebSocket, open the notification
socket (``/api/notifications/ws``, a public route for the gateway) with a short-lived ticket or
authenticate in its first message, both checked by the notification service; a client that
sends ``Authorization`` has it verified here and forwarded as ``Bearer <JWT>`` like every
proxied request.

Then the gateway opens its own WebSocket to a notification replica (same round-robin and
passive health as HTTP), accepts the client with the subprotocol the upstream chose, and
relays frames both ways until either side closes, passing the close code on.
"""

from __future__ import annotations

import asyncio
import json
import logging
from urllib.parse import parse_qsl

from starlette.types import Receive, Scope, Send
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from api_gateway.gateway import Admission, Gateway
from api_gateway.headers import upstream_request_headers
from api_gateway.proxy import resolve
from api_gateway.routes import WEBSOCKET_SERVICES, Target
from fedimpute_shared.context import current_request_id, new_request_id
from fedimpute_shared.problems import (
    PROBLEM_MEDIA_TYPE,
    BadGateway,
    BadRequest,
    GatewayTimeout,
    NotFound,
    ProblemError,
    ServiceUnavailable,
)

logger = logging.getLogger(__name__)

TOKEN_QUERY_PARAMETER = "access_token"
MAX_MESSAGE_BYTES = 16 * 1024 * 1024
# Close codes that must never be sent in a close frame (RFC 6455 §7.4.1).
_RESERVED_CLOSE_CODES = frozenset({1005, 1006, 1015})


class _UpstreamRefused(ProblemError):
    """The upstream answered the handshake with an HTTP status; the client gets the same."""

    slug = "upstream-refused"

    def __init__(self, status: int, detail: str) -> None:
        self.status = status
        super().__init__(detail)


async def proxy_websocket(gateway: Gateway, scope: Scope, receive: Receive, send: Send) -> None:
    connect_message = await receive()
    if connect_message["type"] != "websocket.connect":
        return
    query = scope.get("query_string", b"")
    try:
        _refuse_token_in_url(query)
        target = resolve(gateway, scope)
        if target.service not in WEBSOCKET_SERVICES:
            raise NotFound("WebSockets are served under /api/notifications only")
        admission = await gateway.admit(scope, target)
        upstream = await _open_upstream(gateway, scope, target, admission, query)
    except ProblemError as exc:
        await _deny(scope, send, exc)
        return
    gateway.metrics.websockets.inc()
    try:
        await send({"type": "websocket.accept", "subprotocol": upstream.subprotocol})
        await _relay(upstream, receive, send)
    finally:
        gateway.metrics.websockets.dec()
        await upstream.close()


def _refuse_token_in_url(query_string: bytes) -> None:
    if not query_string:
        return
    pairs = parse_qsl(query_string.decode("latin-1"), keep_blank_values=True)
    if any(k == TOKEN_QUERY_PARAMETER for k, _ in pairs):
        raise BadRequest(
            "access tokens are never accepted in a URL: send Authorization, or open "
            "/api/notifications/ws with a ticket (POST /api/notifications/ws/tickets)"
        )


async def _open_upstream(
    gateway: Gateway, scope: Scope, target: Target, admission: Admission, query: bytes
) -> ClientConnection:
    headers = upstream_request_headers(
        scope["headers"],
        access_token=admission.identity.access_token if admission.identity else None,
        request_id=current_request_id() or new_request_id(),
        client_ip=admission.client_ip,
        scheme="https" if scope.get("scheme") == "wss" else "http",
    )
    additional = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in headers]
    pool = gateway.pools[target.service]
    suffix = target.upstream_path + ("?" + query.decode("latin-1") if query else "")
    candidates = pool.candidates()
    if not candidates:
        raise ServiceUnavailable(f"{target.service} is unavailable; try again shortly")
    for replica in candidates:
        base = replica.url.copy_with(scheme="wss" if replica.url.scheme == "https" else "ws")
        url = str(base).rstrip("/") + suffix
        try:
            upstream = await connect(
                url,
                additional_headers=additional,
                subprotocols=scope.get("subprotocols") or None,
                open_timeout=gateway.settings.connect_timeout_seconds,
                proxy=None,
                compression=None,
                user_agent_header=None,
                max_size=MAX_MESSAGE_BYTES,
            )
        except InvalidStatus as exc:
            pool.connected(replica)
            raise _UpstreamRefused(
                exc.response.status_code, f"{target.service} refused the WebSocket upgrade"
            ) from None
        except OSError:
            pool.connect_failed(replica)
            gateway.metrics.upstream_errors.labels(target.service, "connect").inc()
            continue
        except TimeoutError:
            gateway.metrics.upstream_errors.labels(target.service, "timeout").inc()
            raise GatewayTimeout(f"{target.service} did not complete the upgrade") from None
        except InvalidHandshake as exc:
            gateway.metrics.upstream_errors.labels(target.service, "protocol").inc()
            logger.warning("bad WebSocket handshake from %s: %s", target.service, exc)
            raise BadGateway(f"{target.service} sent an invalid handshake") from None
        pool.connected(replica)
        return upstream
    raise BadGateway(f"{target.service} is unreachable")


async def _deny(scope: Scope, send: Send, problem: ProblemError) -> None:
    if "websocket.http.response" not in scope.get("extensions", {}):
        await send({"type": "websocket.close", "code": 1008})
        return
    body = json.dumps(
        problem.to_problem(scope.get("path")).model_dump(mode="json", exclude_none=True)
    ).encode()
    headers = [
        (b"content-type", PROBLEM_MEDIA_TYPE.encode()),
        (b"content-length", str(len(body)).encode()),
        *((k.lower().encode(), v.encode()) for k, v in problem.headers.items()),
    ]
    await send(
        {"type": "websocket.http.response.start", "status": problem.status, "headers": headers}
    )
    await send({"type": "websocket.http.response.body", "body": body})


def _sendable(code: int | None, default: int) -> int:
    return default if code is None or code in _RESERVED_CLOSE_CODES else code


async def _relay(upstream: ClientConnection, receive: Receive, send: Send) -> None:
    async def client_to_upstream() -> None:
        while True:
            message = await receive()
            if message["type"] == "websocket.receive":
                text = message.get("text")
                await upstream.send(text if text is not None else message.get("bytes") or b"")
            elif message["type"] == "websocket.disconnect":
                await upstream.close(code=_sendable(message.get("code"), 1001))
                return

    async def upstream_to_client() -> None:
        try:
            async for data in upstream:
                if isinstance(data, str):
                    await send({"type": "websocket.send", "text": data})
                else:
                    await send({"type": "websocket.send", "bytes": data})
        except ConnectionClosed:
            pass
        await send(
            {
                "type": "websocket.close",
                "code": _sendable(upstream.close_code, 1011),
                "reason": upstream.close_reason or "",
            }
        )

    tasks = [
        asyncio.ensure_future(client_to_upstream()),
        asyncio.ensure_future(upstream_to_client()),
    ]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
    for result in results:
        if isinstance(result, Exception) and not isinstance(result, ConnectionClosed):
            logger.warning("WebSocket relay ended with %s: %s", type(result).__name__, result)
