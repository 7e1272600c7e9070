"""BGZF (blocked gzip, what ``bgzip`` writes and tabix needs), read block by block.

A BGZF file is a series of gzip members of at most 64 KiB each, every one carrying its own
compressed size in a ``BC`` extra field, and ends with a fixed 28-byte empty block (the EOF
marker). Plain gzip has neither, which is how the two are told apart. Reading block by block keeps
memory bounded (one block decompressed at a time, ≤ 64 KiB) whatever the file says.

Blocks are inflated with ISA-L (``isal``), which inflates and checksums about twice as fast as
zlib: on a whole-file validation, inflating is a third of the work.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path

from isal import isal_zlib

BGZF_EOF = bytes.fromhex("1f8b08040000000000ff0600424302001b0003000000000000000000")
GZIP_MAGIC = b"\x1f\x8b"
HEADER_SIZE = 18
BGZF_MAX_BLOCK = 65536  # the most a BGZF block may hold, compressed or inflated (SAM spec §4.1)
# isal's stubs call its error an instance, not a class
INFLATE_ERROR: type[Exception] = isal_zlib.error  # type: ignore[assignment]


class BgzfError(Exception):
    """The bytes are not BGZF, or a block is damaged; the message is for the user."""


def block_size(head: bytes | memoryview) -> int | None:
    """The total size of the BGZF block starting with ``head`` (≥ 18 bytes), else None.

    Follows the extra-field subfields properly (``BC`` need not be first).
    """
    if len(head) < 12 or head[0:4] != b"\x1f\x8b\x08\x04":
        return None
    xlen = struct.unpack_from("<H", head, 10)[0]
    if len(head) < 12 + xlen:
        return None
    offset = 12
    while offset + 4 <= 12 + xlen:
        si1, si2, slen = (
            head[offset],
            head[offset + 1],
            struct.unpack_from("<H", head, offset + 2)[0],
        )
        if si1 == 66 and si2 == 67 and slen == 2:  # "BC"
            return int(struct.unpack_from("<H", head, offset + 4)[0]) + 1
        offset += 4 + slen
    return None


def looks_like_gzip(head: bytes) -> bool:
    return head[:2] == GZIP_MAGIC


def inflate_block(block: bytes | memoryview) -> bytes:
    """Decompress one whole BGZF block, checking its CRC and size.

    The output is bounded: a block may hold at most :data:`BGZF_MAX_BLOCK` bytes, so inflation
    stops there and a member that would inflate further (a compression bomb: 10 KB of deflate
    can claim 10 MB of newlines) is refused as corrupt without ever being materialised. The
    trailer's size is checked first, but never trusted alone (it can lie).
    """
    xlen = struct.unpack_from("<H", block, 10)[0]
    crc, isize = struct.unpack_from("<II", block, len(block) - 8)
    if isize > BGZF_MAX_BLOCK:
        raise BgzfError("corrupt")
    inflater = isal_zlib.decompressobj(-15)
    try:
        data = inflater.decompress(block[12 + xlen : -8], BGZF_MAX_BLOCK)
    except INFLATE_ERROR:
        raise BgzfError("corrupt") from None
    if not inflater.eof or inflater.unconsumed_tail:
        raise BgzfError("corrupt")  # more output than a block may hold, or a cut stream
    if isize != len(data) or crc != isal_zlib.crc32(data):
        raise BgzfError("corrupt")
    return data


def decompressed_chunks(path: Path, size: int = 4 * 1024 * 1024) -> Iterator[bytes]:
    """The decompressed content of a BGZF file in pieces of at least ``size`` bytes (whole
    blocks, so each piece is at most ``size`` + 64 KiB); every block's size, CRC and length are
    checked (:func:`inflate_block`); a damaged or cut block raises :class:`BgzfError`."""
    pieces: list[bytes] = []
    held = 0
    for block in _blocks(path, size):
        data = inflate_block(block)
        pieces.append(data)
        held += len(data)
        if held >= size:
            yield b"".join(pieces)
            pieces, held = [], 0
    if held:
        yield b"".join(pieces)


def _blocks(path: Path, read_size: int) -> Iterator[memoryview]:
    """The raw BGZF blocks of ``path``, read ``read_size`` bytes at a time."""
    with open(path, "rb") as f:
        buffer = b""
        offset = 0
        while True:
            if len(buffer) - offset < BGZF_MAX_BLOCK:  # top up: the next block may be cut
                buffer = buffer[offset:] + f.read(read_size)
                offset = 0
            if offset == len(buffer):
                return
            size = block_size(memoryview(buffer)[offset : offset + HEADER_SIZE + 64])
            if size is None or size < HEADER_SIZE + 8:
                raise BgzfError("corrupt")
            if offset + size > len(buffer):
                raise BgzfError("corrupt")  # the file ends inside a block
            yield memoryview(buffer)[offset : offset + size]
            offset += size


class HeadInflater:
    """Incrementally inflates the first blocks of an upload as its bytes stream past, so the
    header can be checked before the upload is accepted. Feeds stop once ``done`` is set.

    Memory stays at the chunk being fed plus one block: a block's size is read from its ``BC``
    field (at most 64 KiB) and each is inflated with :func:`inflate_block`'s bounded output."""

    def __init__(self) -> None:
        self._pending = bytearray()
        self.first_bytes = b""
        self.done = False

    def feed(self, data: bytes | memoryview) -> Iterator[bytes]:
        """Decompressed pieces contained in the bytes seen so far."""
        if self.done:
            return
        if len(self.first_bytes) < HEADER_SIZE:
            self.first_bytes += bytes(data[: HEADER_SIZE - len(self.first_bytes)])
        self._pending += data
        while len(self._pending) >= HEADER_SIZE and not self.done:
            size = block_size(bytes(self._pending[: HEADER_SIZE + 64]))
            if size is None:
                raise BgzfError("not-bgzf")
            if len(self._pending) < size:
                return
            block = bytes(self._pending[:size])
            del self._pending[:size]
            yield inflate_block(block)

    def stop(self) -> None:
        self.done = True
        self._pending.clear()
