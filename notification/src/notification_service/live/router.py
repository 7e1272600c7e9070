"""``/notifications/ws``: the live WebSocket, and the tickets that open it.

Authentication never puts an access token in a URL (docs/notification.md, "WebSocket"):

- ``?ticket=`` from ``POST /notifications/ws/tickets`` (browsers), checked before the upgrade
  is accepted (a refused one gets an HTTP 401 problem); or
- ``Authorization: Bearer <JWT>`` on the upgrade (scripts; the gateway forwards it); or
- neither: the upgrade is accepted and the first message must be
  ``{"type": "auth", "token": "<JWT>"}`` within ``WS_AUTH_TIMEOUT_SECONDS`` (close 4401 else).

Then the server sends ``ready``, what the client missed since ``last_id`` (query parameter or
in the auth message), and live messages: ``notification``, ``job_status``, ``heartbeat``.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from starlette.datastructures import State

from fedimpute_shared.auth import TokenError, TokenVerifier
from fedimpute_shared.problems import ProblemError, Unauthorized, problem_response
from notification_service.config import Settings
from notification_service.dependencies import TicketsDep, Writer
from notification_service.live.broker import Broker
from notification_service.live.hub import CLOSE_UNAUTHORIZED, Connection, Hub
from notification_service.live.schemas import TicketOut
from notification_service.live.tickets import Identity, TicketError, Tickets, identity_of

__all__ = ["router"]

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/notifications/ws", tags=["live"])

_CLOSE_TOO_BIG = 1009


@router.post(
    "/tickets",
    status_code=201,
    summary="A single-use ticket to open the WebSocket (valid for seconds)",
)
async def create_ticket(user: Writer, tickets: TicketsDep) -> TicketOut:
    ticket, expires_at = await tickets.issue(identity_of(user))
    return TicketOut(ticket=ticket, expires_at=expires_at)


async def _verify(verifier: TokenVerifier, token: str) -> Identity:
    try:
        return identity_of(await verifier.verify_access(token))
    except (TokenError, ValueError) as exc:
        raise Unauthorized(str(exc) if isinstance(exc, TokenError) else "invalid subject") from None


async def _from_handshake(websocket: WebSocket, state: State) -> Identity | None:
    """The identity the upgrade request proves (ticket or bearer token), None for neither."""
    tickets: Tickets = state.tickets
    if (ticket := websocket.query_params.get("ticket")) is not None:
        try:
            return await tickets.redeem(ticket)
        except TicketError as exc:
            raise Unauthorized(str(exc)) from None
    authorization = websocket.headers.get("authorization", "")
    scheme, _, token = authorization.partition(" ")
    if authorization:
        if scheme.lower() != "bearer" or not token:
            raise Unauthorized("the Authorization header must be 'Bearer <token>'")
        return await _verify(state.token_verifier, token.strip())
    return None


async def _deny(websocket: WebSocket, problem: ProblemError) -> None:
    response = problem_response(problem.to_problem(websocket.url.path), problem.headers)
    try:
        await websocket.send_denial_response(response)
    except RuntimeError:  # a server without the denial-response extension
        await websocket.close(CLOSE_UNAUTHORIZED, problem.detail or "unauthorized")


def _parse(text: str) -> dict[str, Any] | None:
    try:
        message = json.loads(text)
    except ValueError:
        return None
    return message if isinstance(message, dict) else None


async def _from_first_message(
    websocket: WebSocket, state: State, settings: Settings
) -> tuple[Identity, str | None] | None:
    """Wait for ``{"type": "auth", ...}``; None (after closing 4401) if it does not come."""
    try:
        text = await asyncio.wait_for(websocket.receive_text(), settings.ws_auth_timeout_seconds)
    except WebSocketDisconnect:
        return None
    except (TimeoutError, KeyError, RuntimeError):
        await websocket.close(CLOSE_UNAUTHORIZED, "authenticate first: send an auth message")
        return None
    message = _parse(text[: settings.ws_max_client_message_bytes + 1]) or {}
    try:
        if message.get("type") != "auth":
            raise Unauthorized("the first message must be {'type': 'auth', ...}")
        if isinstance(ticket := message.get("ticket"), str):
            try:
                identity = await state.tickets.redeem(ticket)
            except TicketError as exc:
                raise Unauthorized(str(exc)) from None
        elif isinstance(token := message.get("token"), str):
            identity = await _verify(state.token_verifier, token)
        else:
            raise Unauthorized("the auth message needs a 'token' or a 'ticket'")
    except ProblemError as exc:  # refused, or the token keys unavailable
        await websocket.close(CLOSE_UNAUTHORIZED, (exc.detail or "unauthorized")[:120])
        return None
    last_id = message.get("last_id")
    return identity, last_id if isinstance(last_id, str) else None


async def _catch_up(
    hub: Hub, broker: Broker, connection: Connection, last_id: str | None, limit: int
) -> None:
    """Queue what the client missed since ``last_id``, then join the live fan-out; the replay
    runs again after joining so nothing published in between is lost (ids deduplicate)."""
    if last_id is None:
        connection.last_id = await broker.latest_id(connection.user_id)
    else:
        replayed = await broker.replay(connection.user_id, last_id, limit)
        for message_id, text in replayed:
            connection.offer(text, message_id)
        if len(replayed) >= limit:
            connection.offer(json.dumps({"type": "gap", "detail": _GAP}))
    hub.add(connection)
    for message_id, text in await broker.replay(connection.user_id, connection.last_id, limit):
        connection.offer(text, message_id)


_GAP = "more was missed than can be replayed: list /api/notifications for the rest"


@router.websocket("")
async def live(websocket: WebSocket) -> None:
    state: State = websocket.state
    settings: Settings = state.settings
    try:
        identity = await _from_handshake(websocket, state)
    except ProblemError as exc:
        await _deny(websocket, exc)
        return
    await websocket.accept()
    last_id = websocket.query_params.get("last_id")
    if identity is None:
        first = await _from_first_message(websocket, state, settings)
        if first is None:
            return
        identity, last_id = first[0], first[1] or last_id
    hub: Hub = state.hub
    connection = Connection(
        websocket, identity.user_id, identity.expires_at, settings.ws_send_queue_size
    )
    connection.offer(
        json.dumps(
            {
                "type": "ready",
                "user_id": str(identity.user_id),
                "expires_at": identity.expires_at.isoformat(),
                "heartbeat_seconds": settings.ws_heartbeat_seconds,
            }
        )
    )
    try:
        await _catch_up(hub, state.broker, connection, last_id, settings.ws_send_queue_size // 2)
        await hub.serve(connection, _Client(connection, state, settings).handle)
    finally:
        hub.remove(connection)


class _Client:
    """What a connected client may say: ``ping``, and ``auth`` again to renew credentials."""

    def __init__(self, connection: Connection, state: State, settings: Settings) -> None:
        self._connection = connection
        self._state = state
        self._max_bytes = settings.ws_max_client_message_bytes

    def _reply(self, **message: Any) -> None:
        self._connection.offer(json.dumps(message))

    async def handle(self, text: str) -> None:
        if len(text.encode()) > self._max_bytes:
            self._connection.request_close(_CLOSE_TOO_BIG, "message too big")
            return
        message = _parse(text)
        kind = message.get("type") if message else None
        if kind == "ping":
            self._reply(type="pong")
        elif kind == "auth" and message is not None:
            await self._renew(message)
        else:
            self._reply(type="error", detail="send JSON objects of type 'ping' or 'auth'")

    async def _renew(self, message: dict[str, Any]) -> None:
        token = message.get("token")
        try:
            if not isinstance(token, str):
                raise Unauthorized("the auth message needs a 'token'")
            identity = await _verify(self._state.token_verifier, token)
        except ProblemError as exc:
            self._reply(type="error", detail=exc.detail)
            return
        if identity.user_id != self._connection.user_id:
            self._connection.request_close(CLOSE_UNAUTHORIZED, "a connection keeps its user")
            return
        self._connection.expires_at = max(self._connection.expires_at, identity.expires_at)
        self._reply(type="renewed", expires_at=self._connection.expires_at.isoformat())
