"""Which headers cross the gateway, in each direction.

Towards a service: hop-by-hop headers (RFC 9110 §7.6.1, plus any named in ``Connection``) are
dropped; so are identity and forwarding headers a client could forge (``X-User-*``,
``X-Forwarded-*``, ``Forwarded``, ``X-Real-IP``), the client's ``Authorization`` (replaced by
the verified or exchanged JWT) and its ``Host``. The gateway then sets ``X-Request-ID``,
``X-Forwarded-Proto``/``-Host``, and both ``X-Forwarded-For`` and ``X-Real-IP`` to the one
client address it decided on (trusted proxies already resolved): a service that trusts the
gateway and reads ``X-Forwarded-For`` right to left gets the client at once.

Towards the client: hop-by-hop headers, and those the gateway sets itself (``Date``,
``Server``, ``X-Request-ID``, CORS) are dropped; everything else (``Content-Range``, ``ETag``,
``Location``, tus headers...) passes unchanged.
"""

from __future__ import annotations

from collections.abc import Iterable

RawHeaders = list[tuple[bytes, bytes]]

HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"trailers",
        b"transfer-encoding",
        b"upgrade",
    }
)
_REQUEST_DROP = HOP_BY_HOP | {
    b"host",
    b"authorization",
    b"forwarded",
    b"x-real-ip",
    b"x-request-id",
    # uvicorn already answered the client's 100-continue; the upstream gets the body at once.
    b"expect",
    # Sec-WebSocket-* is negotiated again by the gateway's own client handshake.
    b"sec-websocket-key",
    b"sec-websocket-version",
    b"sec-websocket-extensions",
    b"sec-websocket-protocol",
    b"sec-websocket-accept",
}
_RESPONSE_DROP = HOP_BY_HOP | {b"date", b"server", b"x-request-id"}


def _connection_listed(headers: Iterable[tuple[bytes, bytes]]) -> set[bytes]:
    listed: set[bytes] = set()
    for name, value in headers:
        if name.lower() == b"connection":
            listed.update(t.strip().lower() for t in value.split(b",") if t.strip())
    return listed


def upstream_request_headers(
    client_headers: Iterable[tuple[bytes, bytes]],
    *,
    access_token: str | None,
    request_id: str,
    client_ip: str,
    scheme: str,
) -> RawHeaders:
    """The headers sent to the service for a client request."""
    client_headers = list(client_headers)
    drop = _REQUEST_DROP | _connection_listed(client_headers)
    out: RawHeaders = []
    forwarded_host = b""
    for name, value in client_headers:
        lower = name.lower()
        if lower == b"host":
            forwarded_host = value
        if lower in drop or lower.startswith((b"x-user-", b"x-forwarded-")):
            continue
        out.append((lower, value))
    client = client_ip.encode()
    out += [
        (b"x-request-id", request_id.encode()),
        (b"x-forwarded-for", client),
        (b"x-forwarded-proto", scheme.encode()),
        (b"x-real-ip", client),
    ]
    if forwarded_host:
        out.append((b"x-forwarded-host", forwarded_host))
    if access_token is not None:
        out.append((b"authorization", b"Bearer " + access_token.encode()))
    return out


def client_response_headers(upstream_headers: Iterable[tuple[bytes, bytes]]) -> RawHeaders:
    """The upstream response's headers as the client receives them (names lower-cased)."""
    upstream_headers = list(upstream_headers)
    drop = _RESPONSE_DROP | _connection_listed(upstream_headers)
    out: RawHeaders = []
    for name, value in upstream_headers:
        lower = name.lower()
        if lower in drop or lower.startswith(b"access-control-"):
            continue
        out.append((lower, value))
    return out


def header(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    """The first value of ``name`` (lower-case) in ASGI headers."""
    for key, value in headers:
        if key == name:
            return value
    return None
