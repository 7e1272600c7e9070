"""WebSocket proxying to the notification service, through a gateway served by uvicorn."""

import json

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from fedimpute_shared.embedded import free_port
from fedimpute_shared.testing.tokens import bearer


def ws_url(http_url: str, path: str) -> str:
    return http_url.replace("http://", "ws://") + path


async def test_authenticated_client_talks_to_the_upstream(serve_gateway, user_token):
    url = await serve_gateway()
    async with connect(
        ws_url(url, "/api/notifications/ws?since=5"),
        additional_headers={**bearer(user_token), "X-User-ID": "forged"},
        proxy=None,
    ) as ws:
        handshake = json.loads(await ws.recv())
        await ws.send("hello")
        text_echo = await ws.recv()
        await ws.send(b"\x00\x01binary")
        binary_echo = await ws.recv()
    assert handshake["authorization"] == f"Bearer {user_token}"
    assert handshake["x-user-id"] is None
    assert handshake["query"] == "since=5"
    assert text_echo == "echo:hello"
    assert binary_echo == b"\x00\x01binary"


async def test_a_token_in_the_url_is_refused(serve_gateway, upstream_logs, user_token):
    url = await serve_gateway()
    for path in ("/api/notifications/ws", "/api/notifications/other"):
        with pytest.raises(InvalidStatus) as refused:
            async with connect(ws_url(url, f"{path}?access_token={user_token}"), proxy=None):
                pass
        assert refused.value.response.status_code == 400
        assert "never accepted in a URL" in json.loads(refused.value.response.body)["detail"]
    assert not upstream_logs["notification"].websocket_handshakes


async def test_the_notification_socket_opens_without_a_token(serve_gateway, user_token):
    """It authenticates itself (ticket or first message); the gateway only rate-limits it."""
    url = await serve_gateway()
    path = "/api/notifications/ws?ticket=abc"
    async with connect(ws_url(url, path), proxy=None, subprotocols=["fedimpute.v1"]) as ws:
        handshake = json.loads(await ws.recv())
        assert ws.subprotocol == "fedimpute.v1"
    assert handshake["authorization"] is None
    assert handshake["query"] == "ticket=abc"
    assert handshake["subprotocols"] == ["fedimpute.v1"]
    # A bearer token sent anyway is verified and forwarded; a bad one is not forwarded.
    async with connect(
        ws_url(url, "/api/notifications/ws"),
        additional_headers={"Authorization": "Bearer not-a-token"},
        proxy=None,
    ) as ws:
        assert json.loads(await ws.recv())["authorization"] is None


async def test_upstream_close_code_reaches_the_client(serve_gateway, user):
    url = await serve_gateway()
    async with connect(
        ws_url(url, "/api/notifications/ws"), additional_headers=user, proxy=None
    ) as ws:
        await ws.recv()
        await ws.send("close-please")
        with pytest.raises(ConnectionClosed):
            await ws.recv()
    assert ws.close_code == 4000
    assert ws.close_reason == "asked to"


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer not-a-token"}, {"Authorization": "Bearer fgi_unknown"}],
)
async def test_unauthenticated_upgrade_is_refused_before_the_upstream(
    serve_gateway, upstream_logs, token_issuer, headers
):
    url = await serve_gateway()
    with pytest.raises(InvalidStatus) as refused:
        async with connect(
            ws_url(url, "/api/notifications/other"), additional_headers=headers, proxy=None
        ):
            pass
    response = refused.value.response
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert json.loads(response.body)["status"] == 401
    assert not upstream_logs["notification"].websocket_handshakes


async def test_forged_jwt_upgrade_is_refused(serve_gateway, upstream_logs, token_issuer):
    url = await serve_gateway()
    with pytest.raises(InvalidStatus) as refused:
        async with connect(
            ws_url(url, "/api/notifications/other"),
            additional_headers=bearer(token_issuer.hs256_with_public_key()),
            proxy=None,
        ):
            pass
    assert refused.value.response.status_code == 401
    assert not upstream_logs["notification"].websocket_handshakes


@pytest.mark.parametrize("path", ["/api/jobs/ws", "/internal/ws", "/api/../internal/ws"])
async def test_websockets_only_go_to_notifications(serve_gateway, user, path):
    url = await serve_gateway()
    with pytest.raises(InvalidStatus) as refused:
        async with connect(ws_url(url, path), additional_headers=user, proxy=None):
            pass
    assert refused.value.response.status_code == 404


async def test_upstream_refusal_status_is_passed_on(serve_gateway, user):
    url = await serve_gateway()
    with pytest.raises(InvalidStatus) as refused:
        async with connect(
            ws_url(url, "/api/notifications/no-such-socket"), additional_headers=user, proxy=None
        ):
            pass
    assert refused.value.response.status_code in (403, 404)


async def test_notification_down_is_502(serve_gateway, user):
    url = await serve_gateway(notification_url=f"http://127.0.0.1:{free_port()}")
    with pytest.raises(InvalidStatus) as refused:
        async with connect(
            ws_url(url, "/api/notifications/ws"), additional_headers=user, proxy=None
        ):
            pass
    assert refused.value.response.status_code in (502, 503)


async def test_websocket_upgrades_are_rate_limited(serve_gateway, token_issuer):
    url = await serve_gateway(rate_limit_default="1/60")
    headers = bearer(token_issuer.access_token())
    async with connect(
        ws_url(url, "/api/notifications/ws"), additional_headers=headers, proxy=None
    ):
        pass
    with pytest.raises(InvalidStatus) as refused:
        async with connect(
            ws_url(url, "/api/notifications/ws"), additional_headers=headers, proxy=None
        ):
            pass
    assert refused.value.response.status_code == 429
    assert "retry-after" in refused.value.response.headers
