"""Outbound URL safety: stored URLs and connect-time address checks."""

import asyncio

import httpx
import pytest

from fedimpute_shared.urls import GuardedTransport, UnsafeURLError, check_outbound_url


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://example.org", "http:// or https://"),
        ("javascript:alert(1)", "http:// or https://"),
        ("https://user:pw@example.org", "credentials"),
        ("https://", "no host"),
        ("http://127.0.0.1:8080", "loopback"),
        ("http://[::1]/", "loopback"),
        ("http://10.1.2.3", "private"),
        ("http://192.168.0.10", "private"),
        ("http://169.254.169.254/latest/meta-data", "metadata"),
        ("http://[::ffff:127.0.0.1]/", "loopback"),
        ("http://localhost:8000", "local host name"),
        ("http://api.localhost", "local host name"),
        ("http://metadata.google.internal", "metadata"),
        ("http://0.0.0.0", "not a unicast"),
        ("http://example.org:99999", "invalid port"),
        ("https://example.org/#frag", "fragment"),
    ],
)
def test_unsafe_urls_are_refused_with_reason(url, reason):
    with pytest.raises(UnsafeURLError, match=reason):
        check_outbound_url(url, allow_private=False)


def test_public_url_is_normalised():
    assert (
        check_outbound_url(" https://impute.afrigen-d.org/ ", allow_private=False)
        == "https://impute.afrigen-d.org"
    )


def test_private_allowed_by_configuration_but_metadata_never():
    assert (
        check_outbound_url("http://127.0.0.1:8101", allow_private=True) == "http://127.0.0.1:8101"
    )
    with pytest.raises(UnsafeURLError, match="metadata"):
        check_outbound_url("http://169.254.169.254", allow_private=True)


@pytest.fixture
async def local_server():
    async def handle(reader, writer):
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    yield port
    server.close()
    await server.wait_closed()


async def test_connect_time_guard_refuses_names_resolving_to_loopback(local_server):
    transport = GuardedTransport(allow_private=False)
    async with httpx.AsyncClient(transport=transport) as client:
        # "localhost" passes no static check here: the refusal happens when connecting.
        with pytest.raises(httpx.ConnectError, match="loopback"):
            await client.get(f"http://localhost:{local_server}/")


async def test_connect_time_guard_allows_when_configured(local_server):
    async with httpx.AsyncClient(transport=GuardedTransport(allow_private=True)) as client:
        response = await client.get(f"http://localhost:{local_server}/")
    assert response.text == "ok"
