"""Issue 10 item 12: tus numeric headers take ASCII digits only; anything else is a 400
problem, never a 500 (``"²".isdigit()`` is True but ``int("²")`` raises)."""

import pytest

from fedimpute_shared.text import ascii_count

from .conftest import good_vcf
from .test_tus import TUS, create, metadata

BAD_NUMBERS = [b"\xb2", "\u0663".encode(), b"12a", b"-1", b" 5", b"9" * 5000, b"+7"]


def _problem_400(response):
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize("value", BAD_NUMBERS)
async def test_a_bad_upload_offset_is_a_400(client, alice, value):
    data = good_vcf()
    location = (await create(client, alice, len(data))).headers["location"]
    response = await client.patch(
        location,
        content=data[:100],
        headers=[
            *alice.items(),
            *TUS.items(),
            ("Upload-Offset", value),
            ("Content-Type", "application/offset+octet-stream"),
        ],
    )
    _problem_400(response)


@pytest.mark.parametrize("value", BAD_NUMBERS)
async def test_a_bad_upload_length_is_a_400(client, alice, value):
    response = await client.post(
        "/files/uploads",
        headers=[
            *alice.items(),
            *TUS.items(),
            ("Upload-Length", value),
            ("Upload-Metadata", metadata(filename="study.vcf.gz")),
        ],
    )
    _problem_400(response)


def test_ascii_count_takes_ascii_digits_only():
    assert ascii_count("0") == 0
    assert ascii_count("123456789012345678") == 123456789012345678
    for bad in [None, "", "²", "\u0663", "1_000", "-1", " 1", "1 ", "9" * 19]:
        assert ascii_count(bad) is None, bad
