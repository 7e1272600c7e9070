"""Issue 10 item 1: the header check that runs while a ``.vcf.gz`` streams in inflates with a
bounded output, refuses a member larger than the BGZF maximum and never splits more than it needs
into lines, so a 10 KB upload cannot cost the service hundreds of megabytes."""

from __future__ import annotations

import struct
import tracemalloc
import zlib

import pytest

from file_manager.testdata import BGZF_EOF, bgzf_block
from file_manager.uploads.sink import VcfHeadCheck
from file_manager.vcf import messages as msg
from file_manager.vcf.bgzf import BGZF_MAX_BLOCK, BgzfError, inflate_block
from file_manager.vcf.validator import Rejected

from .conftest import assert_nothing_left, upload_raw
from .test_tus import create, patch

TEN_MB = 10 * 1024 * 1024


def bomb_member(payload: bytes, *, claimed_size: int | None = None) -> bytes:
    """A gzip member with a BGZF ``BC`` field whose deflate stream inflates to ``payload``; its
    trailer claims ``claimed_size`` (default: the true size mod 2**32)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    deflated = compressor.compress(payload) + compressor.flush()
    assert len(deflated) + 26 <= 65536, "must fit a BGZF block"
    header = b"\x1f\x8b\x08\x04\x00\x00\x00\x00\x00\xff\x06\x00BC\x02\x00" + struct.pack(
        "<H", len(deflated) + 25
    )
    size = len(payload) if claimed_size is None else claimed_size
    return header + deflated + struct.pack("<II", zlib.crc32(payload), size & 0xFFFFFFFF)


NEWLINES = b"##fileformat=VCFv4.2\n" + b"\n" * TEN_MB


def _peak_while(feed: bytes) -> tuple[int, BaseException | None]:
    check = VcfHeadCheck(16 * 1024 * 1024)
    tracemalloc.start()
    error: BaseException | None = None
    try:
        for offset in range(0, len(feed), 1024 * 1024):
            check.feed(feed[offset : offset + 1024 * 1024])
        check.finish()
    except Rejected as rejected:
        error = rejected
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak, error


@pytest.mark.parametrize("claimed", [None, 60_000], ids=["honest trailer", "lying trailer"])
def test_ten_megabytes_of_newlines_in_one_member_cost_little_memory(claimed):
    member = bomb_member(NEWLINES, claimed_size=claimed)
    assert len(member) < 20_000  # a ~10 KB upload
    peak, error = _peak_while(member + BGZF_EOF)
    assert isinstance(error, Rejected)
    assert error.issue.message == msg.malformed(msg.BAD_BGZF_BLOCK)
    assert peak < 1024 * 1024, f"peak {peak} bytes"


def test_a_full_block_of_short_header_lines_is_never_split_whole():
    """64 KiB of one-byte lines inside the BGZF maximum: refused at the first bad line, without
    a list of 32 000 lines."""
    member = bgzf_block(b"##fileformat=VCFv4.2\n" + b"x\n" * 32_000)
    peak, error = _peak_while(member + BGZF_EOF)
    assert isinstance(error, Rejected)
    assert error.issue.message == msg.malformed(msg.NO_CHROM_LINE)
    assert peak < 512 * 1024, f"peak {peak} bytes"


def test_inflate_block_refuses_output_beyond_the_bgzf_maximum():
    with pytest.raises(BgzfError):
        inflate_block(bomb_member(b"\n" * (BGZF_MAX_BLOCK + 1)))
    with pytest.raises(BgzfError):
        inflate_block(bomb_member(b"\n" * TEN_MB, claimed_size=100))
    assert inflate_block(bomb_member(b"a" * BGZF_MAX_BLOCK)) == b"a" * BGZF_MAX_BLOCK


async def test_upload_of_a_member_bomb_is_a_422_and_leaves_nothing(client, alice, db, storage_dir):
    response = await upload_raw(client, alice, bomb_member(NEWLINES) + BGZF_EOF)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert msg.BAD_BGZF_BLOCK in response.json()["detail"]
    await assert_nothing_left(db, storage_dir)


async def test_tus_upload_of_a_member_bomb_is_a_422(client, alice):
    data = bomb_member(NEWLINES) + BGZF_EOF
    created = await create(client, alice, len(data))
    assert created.status_code == 201, created.text
    done = await patch(client, alice, created.headers["location"], 0, data)
    assert done.status_code == 422, done.text
    assert msg.BAD_BGZF_BLOCK in done.json()["detail"]
