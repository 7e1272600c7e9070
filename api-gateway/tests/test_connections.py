"""The upstream connection pool (fedimpute_shared.transport, as the gateway uses it): reuse, caps, and connections that must not be reused."""

import asyncio

import httpx
import pytest

from fedimpute_shared.embedded import free_port
from fedimpute_shared.transport import PooledTransport


async def get(transport: PooledTransport, url: str, **timeouts: float) -> httpx.Response:
    request = httpx.Request("GET", url, extensions={"timeout": timeouts} if timeouts else {})
    response = await transport.handle_async_request(request)
    await response.aread()
    await response.aclose()
    return response


async def test_sequential_requests_reuse_one_connection(upstreams):
    transport = PooledTransport()
    try:
        ports = {
            (await get(transport, f"{upstreams['job-processor']}/jobs/{i}")).json()["peer_port"]
            for i in range(5)
        }
    finally:
        await transport.aclose()
    assert len(ports) == 1


async def test_concurrent_requests_open_more_connections(upstreams):
    transport = PooledTransport()
    try:
        responses = await asyncio.gather(
            *(
                get(transport, f"{upstreams['job-processor']}/jobs/slow?delay=0.2")
                for _ in range(3)
            ),
            get(transport, f"{upstreams['job-processor']}/jobs/x"),
        )
        after = await get(transport, f"{upstreams['job-processor']}/jobs/y")
    finally:
        await transport.aclose()
    assert all(r.status_code == 200 for r in responses)
    assert after.status_code == 200


async def test_the_connection_cap_gives_a_pool_timeout(upstreams):
    transport = PooledTransport(max_connections_per_origin=1)
    slow = asyncio.ensure_future(
        get(transport, f"{upstreams['job-processor']}/jobs/slow?delay=0.5")
    )
    await asyncio.sleep(0.1)
    try:
        with pytest.raises(httpx.PoolTimeout):
            await get(transport, f"{upstreams['job-processor']}/jobs/x", pool=0.1)
        assert (await slow).status_code == 200
        assert (
            await get(transport, f"{upstreams['job-processor']}/jobs/x", pool=0.1)
        ).status_code == 200
    finally:
        await transport.aclose()


async def test_a_half_read_response_is_not_reused(upstreams):
    transport = PooledTransport()
    base = upstreams["file-manager"]
    try:
        first = await get(transport, f"{base}/files/a")
        request = httpx.Request("GET", f"{base}/files/blob?size={50 * 2**20}")
        response = await transport.handle_async_request(request)
        async for _ in response.aiter_raw():
            break
        await response.aclose()  # abandoned mid-body: that connection cannot serve again
        after = await get(transport, f"{base}/files/b")
    finally:
        await transport.aclose()
    assert after.status_code == 200
    # the blob took the first request's idle connection; abandoned, it was not put back
    assert after.json()["peer_port"] != first.json()["peer_port"]


async def test_errors_are_httpx_errors():
    transport = PooledTransport()
    try:
        with pytest.raises(httpx.ConnectError):
            await get(transport, f"http://127.0.0.1:{free_port()}/x")
    finally:
        await transport.aclose()
