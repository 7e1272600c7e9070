"""The proxy's own HTTP/1.1 client (api_gateway.upstream_http) against real uvicorn upstreams:
keep-alive reuse, the per-origin cap, what must never be reused, framing and its errors."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
from collections.abc import AsyncIterator

import httpx
import pytest

from api_gateway.upstream_http import (
    ConnectFailed,
    Origin,
    PoolTimeout,
    ProtocolError,
    Timeouts,
    UpstreamConnections,
    UpstreamResponse,
    UpstreamTimeout,
    request_head,
)
from fedimpute_shared.embedded import free_port

FAST = Timeouts(connect=2, read=5, write=5, pool=5)


def origin_of(url: str) -> Origin:
    parsed = httpx.URL(url)
    return Origin(parsed.host, parsed.port or 80)


async def exchange(
    connections: UpstreamConnections,
    url: str,
    method: bytes = b"GET",
    body: AsyncIterator[bytes] | None = None,
    *,
    headers: list[tuple[bytes, bytes]] | None = None,
    chunked: bool = False,
    timeouts: Timeouts = FAST,
) -> tuple[UpstreamResponse, bytes]:
    """One request, its whole body read, the response closed."""
    parsed = httpx.URL(url)
    head = request_head(
        method,
        parsed.raw_path,
        [(b"host", parsed.netloc), *(headers or [])],
        chunked=chunked,
    )
    response = await connections.request(
        origin_of(url), method, head, body, chunked=chunked, timeouts=timeouts
    )
    try:
        data = b"".join([chunk async for chunk in response.body()])
    finally:
        response.close()
    return response, data


async def test_sequential_requests_reuse_one_connection(upstreams):
    connections = UpstreamConnections(limit=8, keepalive=4)
    try:
        ports = set()
        for i in range(5):
            response, data = await exchange(connections, f"{upstreams['job-processor']}/jobs/{i}")
            assert response.status == 200
            ports.add(json.loads(data)["peer_port"])
    finally:
        connections.close()
    assert len(ports) == 1


async def test_an_expired_idle_connection_is_not_reused(upstreams):
    connections = UpstreamConnections(limit=8, keepalive=0.05)
    try:
        _, first = await exchange(connections, f"{upstreams['job-processor']}/jobs/a")
        await asyncio.sleep(0.1)
        _, second = await exchange(connections, f"{upstreams['job-processor']}/jobs/b")
    finally:
        connections.close()
    assert json.loads(first)["peer_port"] != json.loads(second)["peer_port"]


async def test_the_connection_cap_gives_a_pool_timeout(upstreams):
    connections = UpstreamConnections(limit=1, keepalive=4)
    base = upstreams["job-processor"]
    slow = asyncio.ensure_future(exchange(connections, f"{base}/jobs/slow?delay=0.5"))
    await asyncio.sleep(0.1)
    try:
        with pytest.raises(PoolTimeout):
            await exchange(connections, f"{base}/jobs/x", timeouts=Timeouts(2, 5, 5, pool=0.1))
        assert (await slow)[0].status == 200
        assert (await exchange(connections, f"{base}/jobs/x"))[0].status == 200
    finally:
        connections.close()


async def test_a_half_read_response_is_not_reused(upstreams):
    connections = UpstreamConnections(limit=8, keepalive=4)
    base = upstreams["file-manager"]
    try:
        _, first = await exchange(connections, f"{base}/files/a")
        parsed = httpx.URL(f"{base}/files/blob?size={50 * 2**20}")
        head = request_head(b"GET", parsed.raw_path, [(b"host", parsed.netloc)], chunked=False)
        response = await connections.request(
            origin_of(base), b"GET", head, None, chunked=False, timeouts=FAST
        )
        async for _ in response.body():
            break
        response.close()  # abandoned mid-body: that connection cannot serve again
        _, after = await exchange(connections, f"{base}/files/b")
    finally:
        connections.close()
    assert json.loads(after)["peer_port"] != json.loads(first)["peer_port"]


async def test_a_large_body_streams_through_whole(upstreams):
    connections = UpstreamConnections(limit=8, keepalive=4)
    size = 5 * 2**20 + 3
    try:
        response, data = await exchange(
            connections, f"{upstreams['file-manager']}/files/blob?size={size}"
        )
    finally:
        connections.close()
    assert response.status == 200
    assert response.content_length == str(size)
    assert data == bytes(i % 256 for i in range(size))


async def test_head_answers_without_a_body_and_the_connection_is_not_kept(upstreams):
    connections = UpstreamConnections(limit=8, keepalive=4)
    base = upstreams["file-manager"]
    try:
        response, data = await exchange(connections, f"{base}/files/blob?size=4096", b"HEAD")
        assert (response.status, data, response.content_length) == (200, b"", "4096")
        # the next request still gets an answer (on a new connection)
        response, data = await exchange(connections, f"{base}/files/x")
    finally:
        connections.close()
    assert response.status == 200
    assert json.loads(data)["path"] == "/files/x"


@pytest.mark.parametrize("chunked", [False, True])
async def test_request_bodies_arrive_byte_identical(upstreams, chunked):
    connections = UpstreamConnections(limit=8, keepalive=4)
    parts = [b"a" * 70_000, bytes(range(256)) * 40, b"z"]
    payload = b"".join(parts)

    async def body() -> AsyncIterator[bytes]:
        for part in parts:
            yield part

    length = [] if chunked else [(b"content-length", str(len(payload)).encode())]
    try:
        response, data = await exchange(
            connections,
            f"{upstreams['file-manager']}/files",
            b"POST",
            body(),
            headers=length,
            chunked=chunked,
        )
        # the connection stays usable after a chunked body too
        again, _ = await exchange(connections, f"{upstreams['file-manager']}/files/x")
    finally:
        connections.close()
    seen = json.loads(data)
    assert response.status == again.status == 200
    assert seen["body_size"] == len(payload)
    assert seen["body_sha256"] == hashlib.sha256(payload).hexdigest()
    names = [name for name, _ in seen["headers"]]
    assert ("transfer-encoding" in names) is chunked


async def test_a_post_without_a_body_says_content_length_zero(upstreams):
    connections = UpstreamConnections(limit=8, keepalive=4)
    try:
        _, data = await exchange(connections, f"{upstreams['file-manager']}/files", b"POST")
    finally:
        connections.close()
    assert ["content-length", "0"] in json.loads(data)["headers"]


def test_cr_or_lf_in_a_header_or_target_is_refused():
    with pytest.raises(ValueError, match="CR or LF"):
        request_head(b"GET", b"/x", [(b"x-a", b"1\r\nx-injected: 1")], chunked=False)
    with pytest.raises(ValueError, match="CR or LF"):
        request_head(b"GET", b"/x HTTP/1.1\r\nHost: a\r\n\r\nGET /y", [], chunked=False)
    assert request_head(b"GET", b"/x", [(b"host", b"a")], chunked=False) == (
        b"GET /x HTTP/1.1\r\nhost: a\r\n\r\n"
    )


async def test_errors_before_and_after_sending(upstreams):
    connections = UpstreamConnections(limit=8, keepalive=4)
    try:
        with pytest.raises(ConnectFailed):
            await exchange(connections, f"http://127.0.0.1:{free_port()}/x")
        with pytest.raises(UpstreamTimeout):
            await exchange(
                connections,
                f"{upstreams['job-processor']}/jobs/slow?delay=1",
                timeouts=Timeouts(2, read=0.2, write=5, pool=5),
            )
    finally:
        connections.close()


@contextlib.asynccontextmanager
async def raw_server(answer: bytes) -> AsyncIterator[str]:
    """A TCP server that reads a request head and writes ``answer`` (then waits)."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(Exception):
            await reader.readuntil(b"\r\n\r\n")
            writer.write(answer)
            await writer.drain()
            await asyncio.sleep(0.3)
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    finally:
        server.close()
        await server.wait_closed()


async def test_not_http_is_a_protocol_error():
    connections = UpstreamConnections(limit=8, keepalive=4)
    try:
        async with raw_server(b"SSH-2.0-nope\r\n\x00\x01garbage\r\n\r\n") as url:
            with pytest.raises(ProtocolError):
                await exchange(connections, f"{url}/x")
    finally:
        connections.close()


async def test_informational_answers_are_skipped_and_close_delimited_bodies_end_at_eof():
    connections = UpstreamConnections(limit=8, keepalive=4)
    answer = b"HTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\nHTTP/1.1 200 OK\r\n\r\nuntil the end"
    try:
        async with raw_server(answer) as url:
            response, data = await exchange(connections, f"{url}/x")
    finally:
        connections.close()
    assert (response.status, data) == (200, b"until the end")
    assert response.headers == []


async def test_a_truncated_body_is_an_error():
    connections = UpstreamConnections(limit=8, keepalive=4)
    answer = b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nonly this"
    try:
        async with raw_server(answer) as url:
            with pytest.raises(ProtocolError):
                await exchange(connections, f"{url}/x")
    finally:
        connections.close()


async def test_a_header_bomb_is_a_protocol_error():
    connections = UpstreamConnections(limit=8, keepalive=4)
    answer = b"HTTP/1.1 200 OK\r\n" + b"x-pad: " + b"a" * 70_000 + b"\r\n\r\n"
    try:
        async with raw_server(answer) as url:
            with pytest.raises(ProtocolError, match="too large"):
                await exchange(connections, f"{url}/x")
    finally:
        connections.close()


async def test_a_second_answer_to_one_request_is_not_taken_for_the_next():
    connections = UpstreamConnections(limit=8, keepalive=4)
    one = b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\none"
    two = b"HTTP/1.1 201 Created\r\ncontent-length: 3\r\n\r\ntwo"
    try:
        async with raw_server(one + two) as url:
            first = await exchange(connections, f"{url}/x")
            await asyncio.sleep(0.05)  # the extra answer arrives on the idle connection
            # that connection is dropped: the next request gets its own answer, not "two"
            second = await exchange(connections, f"{url}/y")
    finally:
        connections.close()
    assert [(r.status, data) for r, data in (first, second)] == [(200, b"one")] * 2
