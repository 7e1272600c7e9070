"""Real upstreams for the gateway's tests: small Starlette apps served by uvicorn on free ports.

- :func:`echo_service`: answers any path with what it received (method, raw path, query,
  headers, body size and SHA-256) so tests can see exactly what the gateway forwarded; plus a
  few special paths (large and ranged bodies, slow answers, chosen statuses, a WebSocket, an
  OpenAPI document).
- the user-service variant also plays the two internal endpoints the gateway calls
  (service tokens, API-token exchange), minting real JWTs with the test :class:`TokenIssuer`.
- :func:`garbage_server`: a TCP server that answers anything with bytes that are not HTTP.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import re
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from fedimpute_shared.embedded import free_port
from fedimpute_shared.testing.tokens import TokenIssuer

GATEWAY_SECRET = "test-gateway-client-secret-0123456789"
CHUNK = 64 * 1024
_PATTERN = bytes(range(256)) * (CHUNK // 256)


def pattern_bytes(start: int, end: int) -> bytes:
    """Bytes ``start..end-1`` of the deterministic blob the upstream serves."""
    return bytes(i % 256 for i in range(start, end))


async def _pattern_stream(
    start: int, end: int, log: UpstreamLog | None = None
) -> AsyncIterator[bytes]:
    if log is not None:
        log.open_streams += 1
    try:
        position = start
        while position < end:
            offset = position % 256
            size = min(CHUNK - offset, end - position)
            yield _PATTERN[offset : offset + size]
            position += size
    finally:
        if log is not None:
            log.open_streams -= 1


@dataclass
class ApiToken:
    user_id: str
    token_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    scopes: tuple[str, ...] = ("jobs:read",)
    revoked: bool = False


@dataclass
class UpstreamLog:
    """What an upstream saw (tests assert on it)."""

    requests: list[dict[str, Any]] = field(default_factory=list)
    exchanges: int = 0
    service_tokens: int = 0
    websocket_handshakes: list[dict[str, Any]] = field(default_factory=list)
    open_streams: int = 0
    # user-service's exchange refuses every service token (as if the keys were rotated)
    refuse_service_tokens: bool = False

    def clear(self) -> None:
        self.requests.clear()
        self.refuse_service_tokens = False
        self.exchanges = 0
        self.service_tokens = 0
        self.websocket_handshakes.clear()


def echo_service(
    service: str,
    log: UpstreamLog,
    *,
    issuer: TokenIssuer | None = None,
    api_tokens: dict[str, ApiToken] | None = None,
) -> Starlette:
    async def echo(request: Request) -> Response:
        digest = hashlib.sha256()
        size = 0
        async for chunk in request.stream():
            digest.update(chunk)
            size += len(chunk)
        seen = {
            "service": service,
            "method": request.method,
            "path": request.scope["raw_path"].decode(),
            "query": request.scope["query_string"].decode(),
            "headers": [[k.decode(), v.decode()] for k, v in request.scope["headers"]],
            "body_size": size,
            "body_sha256": digest.hexdigest(),
            "peer_port": request.client.port if request.client else None,
        }
        log.requests.append(seen)
        return JSONResponse(seen, headers={"X-Upstream": service})

    async def blob(request: Request) -> Response:
        size = int(request.query_params.get("size", "1024"))
        headers = {
            "Accept-Ranges": "bytes",
            "ETag": '"blob"',
            "Content-Type": "application/octet-stream",
        }
        match = re.fullmatch(r"bytes=(\d+)-(\d*)", request.headers.get("range", ""))
        if match:
            start = int(match[1])
            end = min(int(match[2]) + 1 if match[2] else size, size)
            headers |= {
                "Content-Range": f"bytes {start}-{end - 1}/{size}",
                "Content-Length": str(end - start),
            }
            return StreamingResponse(
                _pattern_stream(start, end, log), status_code=206, headers=headers
            )
        headers["Content-Length"] = str(size)
        return StreamingResponse(_pattern_stream(0, size, log), headers=headers)

    async def slow(request: Request) -> Response:
        await asyncio.sleep(float(request.query_params.get("delay", "5")))
        return JSONResponse({"slept": True})

    async def status(request: Request) -> Response:
        code = int(request.path_params["code"])
        headers = {
            "X-Custom": "kept",
            "Connection": "x-hop",
            "X-Hop": "dropped",
            "Keep-Alive": "timeout=5",
            "Access-Control-Allow-Origin": "*",
        }
        body = b"" if code in (204, 304) else b"status body"
        return Response(body, status_code=code, headers=headers)

    async def set_cookie(request: Request) -> Response:
        response = JSONResponse({"ok": True})
        response.set_cookie("session", "secret-of-one-user", httponly=True)
        return response

    async def openapi(request: Request) -> Response:
        return JSONResponse(spec_for(service))

    async def websocket(ws: WebSocket) -> None:
        handshake = {
            "authorization": ws.headers.get("authorization"),
            "query": ws.scope["query_string"].decode(),
            "x-user-id": ws.headers.get("x-user-id"),
            "subprotocols": ws.scope.get("subprotocols", []),
        }
        log.websocket_handshakes.append(handshake)
        await ws.accept(subprotocol=(ws.scope.get("subprotocols") or [None])[0])
        await ws.send_json(handshake)
        try:
            while True:
                message = await ws.receive()
                if message["type"] == "websocket.disconnect":
                    return
                if message.get("text") == "close-please":
                    await ws.close(code=4000, reason="asked to")
                    return
                if message.get("text") is not None:
                    await ws.send_text("echo:" + message["text"])
                else:
                    await ws.send_bytes(message.get("bytes") or b"")
        except WebSocketDisconnect:
            return

    routes: list[Any] = [
        Route("/openapi.json", openapi),
        Route("/files/blob", blob, methods=["GET", "HEAD"]),
        Route("/jobs/slow", slow),
        Route("/files/slow", slow),
        Route("/users/status/{code:int}", status, methods=["GET", "POST"]),
        Route("/auth/set-cookie", set_cookie, methods=["POST"]),
        WebSocketRoute("/notifications/ws", websocket),
    ]
    if issuer is not None and api_tokens is not None:
        routes += _user_service_routes(issuer, api_tokens, log)
    routes.append(
        Route(
            "/{path:path}",
            echo,
            methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
        )
    )
    return Starlette(routes=routes)


def _user_service_routes(
    issuer: TokenIssuer, api_tokens: dict[str, ApiToken], log: UpstreamLog
) -> list[Route]:
    """The two internal endpoints of user-service the gateway relies on (the contract)."""

    async def service_tokens(request: Request) -> Response:
        body = await request.json()
        if body.get("client_id") != "api-gateway" or body.get("client_secret") != GATEWAY_SECRET:
            return JSONResponse({"detail": "bad client"}, status_code=401)
        log.service_tokens += 1
        token = issuer.service_token("api-gateway", body["audience"], expires_in=300)
        return JSONResponse({"access_token": token, "token_type": "Bearer", "expires_in": 300})

    async def exchange(request: Request) -> Response:
        from jose import jwt

        log.exchanges += 1
        authorization = request.headers.get("authorization", "")
        try:
            claims = jwt.get_unverified_claims(authorization.removeprefix("Bearer "))
        except Exception:
            return JSONResponse({"detail": "no service token"}, status_code=401)
        if claims.get("typ") != "service" or claims.get("aud") != "user-service":
            return JSONResponse({"detail": "not a service token for us"}, status_code=401)
        if log.refuse_service_tokens:
            return JSONResponse({"detail": "service token refused"}, status_code=401)
        token = api_tokens.get((await request.json()).get("token", ""))
        if token is None or token.revoked:
            # the API token in the body is bad: 422, never 401 (which is about the caller)
            return JSONResponse({"detail": "unknown or revoked"}, status_code=422)
        access = issuer.access_token(
            token.user_id, roles=["researcher"], scopes=token.scopes, expires_in=900
        )
        return JSONResponse({"access_token": access, "expires_in": 900, "token_id": token.token_id})

    return [
        Route("/internal/service-tokens", service_tokens, methods=["POST"]),
        Route("/internal/api-tokens/exchange", exchange, methods=["POST"]),
    ]


def spec_for(service: str) -> dict[str, Any]:
    """A small spec in FastAPI's shape; every service defines ``Item`` differently and
    ``Problem`` identically, so the merge has a collision and a shared component."""
    prefix = {
        "user-service": "users",
        "service-registry": "services",
        "job-processor": "jobs",
        "file-manager": "files",
        "notification": "notifications",
        "monitoring": "status",
    }[service]
    item_ref = {"$ref": "#/components/schemas/Item"}
    problem = {"title": "Problem", "type": "object", "properties": {"title": {"type": "string"}}}
    return {
        "openapi": "3.1.0",
        "info": {"title": service, "version": "0.1.0"},
        "paths": {
            f"/{prefix}": {
                "get": {
                    "operationId": "list_items",
                    "tags": [prefix],
                    "responses": {
                        "200": {
                            "content": {
                                "application/json": {
                                    "schema": {"$ref": "#/components/schemas/Page_Item_"}
                                }
                            }
                        },
                        "404": {
                            "content": {
                                "application/problem+json": {
                                    "schema": {"$ref": "#/components/schemas/Problem"}
                                }
                            }
                        },
                    },
                }
            },
            f"/{prefix}/{{item_id}}": {
                "get": {
                    "operationId": f"get_{prefix}",
                    "responses": {"200": {"content": {"application/json": {"schema": item_ref}}}},
                }
            },
            "/internal/secret": {"get": {"operationId": "internal", "responses": {}}},
            "/health": {"get": {"operationId": "health", "responses": {}}},
            "/ready": {"get": {"operationId": "ready", "responses": {}}},
            "/metrics": {"get": {"operationId": "metrics", "responses": {}}},
        },
        "components": {
            "schemas": {
                "Item": {"type": "object", "properties": {f"{prefix}_field": {"type": "string"}}},
                "Page_Item_": {
                    "type": "object",
                    "properties": {"items": {"type": "array", "items": item_ref}},
                },
                "Problem": problem,
            },
            "securitySchemes": {"HTTPBearer": {"type": "http", "scheme": "bearer"}},
        },
        "tags": [{"name": prefix, "description": f"{service} things"}],
    }


class Server:
    """An ASGI app served by uvicorn in this event loop, on a free loopback port."""

    def __init__(self, app: Any, *, port: int | None = None, lifespan: str = "off") -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=self.port,
            lifespan=lifespan,
            log_config=None,
            access_log=False,
            timeout_graceful_shutdown=1,
        )
        self._server = uvicorn.Server(config)
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> Server:
        self._task = asyncio.create_task(self._server.serve())
        deadline = time.monotonic() + 15
        while not self._server.started:
            if self._task.done():
                self._task.result()
            if time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            await asyncio.sleep(0.01)
        return self

    async def stop(self) -> None:
        self._server.should_exit = True
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


@contextlib.asynccontextmanager
async def garbage_server() -> AsyncIterator[str]:
    """Answers every connection with bytes that are not an HTTP response."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(Exception):
            await reader.read(1024)
            writer.write(b"SSH-2.0-definitely-not-http\r\n\x00\x01\x02garbage\r\n\r\n")
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.close()
        await server.wait_closed()


async def raw_request(
    url: str, request_line: str, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    """Send one HTTP/1.1 request with an exact, un-normalised request line; return status,
    headers and body (the connection is closed after)."""
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    lines = [request_line, f"Host: {host}:{port}", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
    await writer.drain()
    raw = await reader.read()
    writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    parsed = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        parsed[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), parsed, body


def seen_header(seen: dict[str, Any], name: str) -> list[str]:
    """Every value of header ``name`` an echo upstream received."""
    return [v for k, v in seen["headers"] if k == name.lower()]


def problem(response: Any) -> dict[str, Any]:
    assert response.headers["content-type"] == "application/problem+json", response.text
    body: dict[str, Any] = json.loads(response.content)
    return body


async def read_metrics(client: Any, issuer: Any) -> str:
    """The gateway's /metrics as the monitoring service reads it (a service token for it)."""
    token = issuer.service_token("monitoring", "api-gateway")
    response = await client.get("/metrics", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    return str(response.text)
