"""Path normalisation and the route table, as plain functions."""

import pytest

from api_gateway.config import Settings
from api_gateway.paths import AmbiguousPath, normalise
from api_gateway.routes import PREFIXES, LimitClass, RoutePattern, RouteTable, Transfer
from fedimpute_shared.client_address import TrustedProxies


@pytest.mark.parametrize(
    ("raw", "segments", "trailing"),
    [
        (b"/api/jobs", ("api", "jobs"), False),
        (b"/api/jobs/", ("api", "jobs"), True),
        (b"//api///jobs", ("api", "jobs"), False),
        (b"/api/./jobs/x/../1", ("api", "jobs", "1"), False),
        (b"/api/../internal/x", ("internal", "x"), False),
        (b"/api/%2e%2e/internal", ("internal",), False),
        (b"/api/%2E/jobs", ("api", "jobs"), False),
        (b"/../../etc/passwd", ("etc", "passwd"), False),
        (b"/api/files/a%20b", ("api", "files", "a b"), False),
        (b"/api/files/caf%C3%A9", ("api", "files", "café"), False),
        (b"/api/jobs?x=/../internal", ("api", "jobs"), False),
        (b"/", (), False),
    ],
)
def test_normalise(raw, segments, trailing):
    path = normalise(raw)
    assert path.segments == segments
    assert path.trailing_slash is trailing


@pytest.mark.parametrize(
    "raw",
    [b"/api/users%2f..%2finternal", b"/api/a%5cb", b"/api/a%00b", b"/api/%0d%0aX: y", b"/api/%ff"],
)
def test_ambiguous_paths_are_refused(raw):
    with pytest.raises(AmbiguousPath):
        normalise(raw)


def test_encode_round_trips_reserved_characters():
    path = normalise(b"/api/files/a%20b%3Fc%23d/")
    assert path.encode(1) == "/files/a%20b%3Fc%23d/"
    assert path.encode(1, keep_trailing_slash=False) == "/files/a%20b%3Fc%23d"


@pytest.fixture
def table() -> RouteTable:
    return RouteTable.from_settings(Settings())


@pytest.mark.parametrize(("prefix", "service"), sorted(PREFIXES.items()))
def test_every_contract_prefix_resolves(table, prefix, service):
    target = table.resolve("GET", normalise(f"/api/{prefix}/x".encode()))
    assert target is not None
    assert target.service == service
    assert target.upstream_path == f"/{prefix}/x"
    assert target.label == f"/api/{prefix}"


@pytest.mark.parametrize(
    "raw", [b"/internal/x", b"/api/internal/x", b"/api", b"/x/api/jobs", b"/api/jobsx", b"/docs/x"]
)
def test_everything_else_is_unrouted(table, raw):
    assert table.resolve("GET", normalise(raw)) is None


def test_policies(table):
    def policy(method, raw, json_body=False):
        target = table.resolve(method, normalise(raw), json_body=json_body)
        assert target is not None
        return target.policy

    login = policy("POST", b"/api/auth/login")
    assert (login.public, login.limit_class) == (True, LimitClass.LOGIN)
    assert policy("GET", b"/api/auth/login").public is False  # only POST is public
    assert policy("POST", b"/api/auth/login/").public is True  # trailing slash alike
    upload = policy("PATCH", b"/api/files/uploads/123")
    assert (upload.limit_class, upload.transfer, upload.json_body_cap) == (
        LimitClass.UPLOAD,
        Transfer.LONG,
        False,
    )
    json_post = policy("POST", b"/api/files/1/links", json_body=True)
    assert (json_post.limit_class, json_post.json_body_cap) == (LimitClass.DEFAULT, True)
    download = policy("GET", b"/api/files/1/content")
    assert (download.transfer, download.public) == (Transfer.LONG, False)
    assert policy("GET", b"/api/jobs/1/results/2").transfer is Transfer.LONG
    api = policy("GET", b"/api/jobs/1")
    assert (api.transfer, api.limit_class, api.public) == (Transfer.API, LimitClass.DEFAULT, False)
    assert policy("GET", b"/api/status").public is True
    assert policy("GET", b"/api/files/download/abc").public is True
    assert policy("GET", b"/api/files/links/abc").public is False


@pytest.mark.parametrize(
    ("pattern", "method", "path", "matches"),
    [
        ("* /api/a/**", "GET", "/api/a", True),
        ("* /api/a/**", "PUT", "/api/a/b/c", True),
        ("GET|HEAD /api/a/*", "HEAD", "/api/a/b", True),
        ("GET|HEAD /api/a/*", "POST", "/api/a/b", False),
        ("GET /api/a/*", "GET", "/api/a/b/c", False),
        ("GET /api/a/*/c", "GET", "/api/a/b/c", True),
        ("GET /api/a.b", "GET", "/api/aXb", False),
    ],
)
def test_route_patterns(pattern, method, path, matches):
    assert RoutePattern.parse(pattern).matches(method, path) is matches


@pytest.mark.parametrize(
    ("peer", "forwarded", "client"),
    [
        ("192.0.2.1", "203.0.113.9", "192.0.2.1"),  # untrusted peer: header ignored
        ("10.0.0.5", "203.0.113.9", "203.0.113.9"),
        ("10.0.0.5", "203.0.113.9, 10.0.0.7", "203.0.113.9"),  # trusted hops skipped
        ("10.0.0.5", "198.51.100.1, 203.0.113.9", "203.0.113.9"),  # rightmost untrusted
        ("10.0.0.5", "garbage, 203.0.113.9", "203.0.113.9"),
        ("10.0.0.5", "203.0.113.9, garbage", "10.0.0.5"),
        ("10.0.0.5", None, "10.0.0.5"),
        ("10.0.0.5", "10.0.0.8", "10.0.0.8"),  # all trusted: the farthest
    ],
)
def test_client_ip(peer, forwarded, client):
    assert TrustedProxies(["10.0.0.0/8"]).client_ip(peer, forwarded) == client
