"""The one client-address rule (issue 10 item 6): trusted proxies, joined header lines, buckets."""

import pytest

from fedimpute_shared.client_address import TrustedProxies, address_bucket, join_header_lines


@pytest.mark.parametrize(
    ("peer", "forwarded", "client"),
    [
        ("192.0.2.1", "203.0.113.9", "192.0.2.1"),  # untrusted peer: header ignored
        ("10.0.0.5", "203.0.113.9", "203.0.113.9"),
        ("10.0.0.5", "203.0.113.9, 10.0.0.7", "203.0.113.9"),  # trusted hops skipped
        ("10.0.0.5", "198.51.100.1, 203.0.113.9", "203.0.113.9"),  # right-most untrusted
        ("10.0.0.5", "garbage, 203.0.113.9", "203.0.113.9"),
        ("10.0.0.5", "203.0.113.9, garbage", "10.0.0.5"),  # garbled: the last trusted hop
        ("10.0.0.5", "203.0.113.9, garbage, 10.0.0.9", "10.0.0.9"),
        ("10.0.0.5", None, "10.0.0.5"),
        ("10.0.0.5", "", "10.0.0.5"),
        ("10.0.0.5", "10.0.0.8", "10.0.0.8"),  # all trusted: the farthest
        ("10.0.0.5", "203.0.113.9:4711", "203.0.113.9"),  # proxies that add a port
        ("10.0.0.5", "[2001:db8::1]:443", "2001:db8::1"),
        ("10.0.0.5", "::ffff:203.0.113.9", "203.0.113.9"),
        (None, "203.0.113.9", None),
    ],
)
def test_client_ip(peer, forwarded, client):
    assert TrustedProxies(["10.0.0.0/8"]).client_ip(peer, forwarded) == client


def test_every_header_line_counts_and_the_proxys_own_line_wins():
    forwarded = join_header_lines([b"198.51.100.1", b"203.0.113.9"])  # forged, then the proxy's
    assert forwarded == "198.51.100.1, 203.0.113.9"
    assert TrustedProxies(["10.0.0.0/8"]).client_ip("10.0.0.5", forwarded) == "203.0.113.9"
    assert join_header_lines([]) is None


@pytest.mark.parametrize(
    ("address", "kwargs", "bucket"),
    [
        ("203.0.113.9", {}, "203.0.113.9"),
        ("2001:db8:1:2:3:4:5:6", {}, "2001:db8:1:2::/64"),
        ("2001:db8:1:2::", {}, "2001:db8:1:2::/64"),
        ("2001:db8:1:2:3:4:5:6", {"ipv6_prefix": 48}, "2001:db8:1::/48"),
        ("2001:db8:1:2:3:4:5:6", {"ipv6_prefix": 128}, "2001:db8:1:2:3:4:5:6"),
        ("203.0.113.9", {"ipv4_prefix": 24}, "203.0.113.0/24"),
        ("::ffff:203.0.113.9", {}, "203.0.113.9"),
        ("not-an-address", {}, "not-an-address"),
    ],
)
def test_address_bucket(address, kwargs, bucket):
    assert address_bucket(address, **kwargs) == bucket


def test_a_bad_trusted_proxy_entry_is_named():
    with pytest.raises(ValueError, match="'nope'"):
        TrustedProxies(["10.0.0.0/8", "nope"])
