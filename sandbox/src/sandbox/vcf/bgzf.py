"""BGZF (blocked gzip) reading and writing, the compression tabix needs.

Written here rather than borrowed from pysam so the sandbox installs from pure-Python wheels and
so the simulators can tell BGZF from plain gzip exactly the way `tabix` does: by the `BC` extra
subfield of the first block.
"""

from __future__ import annotations

import gzip
import struct
import zlib

__all__ = ["BGZF_EOF", "bgzf_compress", "decompress", "is_bgzf"]

# The 28-byte empty block htslib appends to mark the end of a BGZF file.
BGZF_EOF = bytes.fromhex("1f8b08040000000000ff0600424302001b0003000000000000000000")

# Uncompressed bytes per block: htslib uses 0xff00 so a block never exceeds 64 KiB compressed.
_BLOCK_DATA = 0xFF00


def _block(chunk: bytes) -> bytes:
    """One BGZF block: a gzip member whose extra field `BC` holds the block size minus one."""
    compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
    deflated = compressor.compress(chunk) + compressor.flush()
    block_size = 18 + len(deflated) + 8
    header = (
        b"\x1f\x8b\x08\x04"
        + b"\x00" * 4
        + b"\x00\xff"
        + struct.pack("<HBBHH", 6, 66, 67, 2, block_size - 1)
    )
    trailer = struct.pack("<II", zlib.crc32(chunk) & 0xFFFFFFFF, len(chunk))
    return header + deflated + trailer


def bgzf_compress(data: bytes) -> bytes:
    """Compress `data` as BGZF, with the EOF marker block, like `bgzip` does."""
    blocks = [_block(data[i : i + _BLOCK_DATA]) for i in range(0, len(data), _BLOCK_DATA)]
    return b"".join(blocks) + BGZF_EOF


def is_bgzf(data: bytes) -> bool:
    """True when the first block carries the BGZF magic and the `BC` extra subfield."""
    if len(data) < 18 or data[:4] != b"\x1f\x8b\x08\x04":
        return False
    xlen = struct.unpack("<H", data[10:12])[0]
    extra = data[12 : 12 + xlen]
    offset = 0
    while offset + 4 <= len(extra):
        si1, si2, slen = (
            extra[offset],
            extra[offset + 1],
            struct.unpack("<H", extra[offset + 2 : offset + 4])[0],
        )
        if si1 == 66 and si2 == 67 and slen == 2:
            return True
        offset += 4 + slen
    return False


def decompress(data: bytes) -> bytes:
    """Inflate gzip or BGZF (a series of gzip members); raises `OSError` for anything else."""
    try:
        return gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as exc:
        raise OSError(str(exc)) from exc
