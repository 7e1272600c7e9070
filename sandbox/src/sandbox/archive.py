"""Password-protected zip files as Michigan ships results.

MIS encrypts every `chr_<n>.zip` with the job password: classic PKWARE "ZipCrypto" by default,
which `unzip -P` and Python's `zipfile` open, or AES-256 when the user ticks `aesEncryption`
(then only 7z or `pyzipper` open it). No maintained library writes ZipCrypto, so it is written
here (PKWARE APPNOTE 6.1); AES goes through pyzipper.
"""

from __future__ import annotations

import io
import secrets
import struct
import time
import zlib

import pyzipper

__all__ = ["encrypted_zip"]

_CRC_TABLE = [0] * 256
for _i in range(256):
    _c = _i
    for _ in range(8):
        _c = (_c >> 1) ^ 0xEDB88320 if _c & 1 else _c >> 1
    _CRC_TABLE[_i] = _c


class _ZipCryptoKeys:
    """The three 32-bit keys of the traditional PKWARE stream cipher."""

    def __init__(self, password: bytes) -> None:
        self.keys = [0x12345678, 0x23456789, 0x34567890]
        for byte in password:
            self._update(byte)

    def _crc(self, crc: int, byte: int) -> int:
        return (crc >> 8) ^ _CRC_TABLE[(crc ^ byte) & 0xFF]

    def _update(self, byte: int) -> None:
        k0, k1, k2 = self.keys
        k0 = self._crc(k0, byte)
        k1 = ((k1 + (k0 & 0xFF)) * 134775813 + 1) & 0xFFFFFFFF
        k2 = self._crc(k2, (k1 >> 24) & 0xFF)
        self.keys = [k0, k1, k2]

    def encrypt(self, data: bytes) -> bytes:
        out = bytearray(len(data))
        for index, byte in enumerate(data):
            temp = (self.keys[2] | 2) & 0xFFFF
            out[index] = byte ^ (((temp * (temp ^ 1)) >> 8) & 0xFF)
            self._update(byte)
        return bytes(out)


def _dos_time(now: float) -> tuple[int, int]:
    t = time.localtime(now)
    return (t.tm_hour << 11) | (t.tm_min << 5) | (t.tm_sec // 2), ((t.tm_year - 1980) << 9) | (
        t.tm_mon << 5
    ) | t.tm_mday


def _zipcrypto_zip(entries: dict[str, bytes], password: str) -> bytes:
    """A deflated zip whose entries are ZipCrypto-encrypted (general purpose flag bit 0)."""
    out = io.BytesIO()
    central: list[bytes] = []
    dos_time, dos_date = _dos_time(time.time())
    for name, data in entries.items():
        crc = zlib.crc32(data) & 0xFFFFFFFF
        compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
        deflated = compressor.compress(data) + compressor.flush()
        keys = _ZipCryptoKeys(password.encode())
        # 12-byte header: 11 random bytes, then the CRC's high byte so readers can check the password.
        header = secrets.token_bytes(11) + bytes([crc >> 24])
        payload = keys.encrypt(header + deflated)
        raw_name = name.encode()
        offset = out.tell()
        fixed = struct.pack("<HHHHHIII", 20, 1, 8, dos_time, dos_date, crc, len(payload), len(data))
        out.write(b"PK\x03\x04" + fixed + struct.pack("<HH", len(raw_name), 0) + raw_name + payload)
        central.append(
            b"PK\x01\x02"
            + struct.pack("<HH", 20, 20)
            + fixed[2:]
            + struct.pack("<HHHHHII", len(raw_name), 0, 0, 0, 0, 0, offset)
            + raw_name
        )
    directory_offset = out.tell()
    directory = b"".join(central)
    out.write(directory)
    out.write(
        b"PK\x05\x06"
        + struct.pack(
            "<HHHHIIH", 0, 0, len(central), len(central), len(directory), directory_offset, 0
        )
    )
    return out.getvalue()


def _aes_zip(entries: dict[str, bytes], password: str) -> bytes:
    buffer = io.BytesIO()
    with pyzipper.AESZipFile(
        buffer, "w", compression=pyzipper.ZIP_DEFLATED, encryption=pyzipper.WZ_AES
    ) as zf:
        zf.setpassword(password.encode())
        for name, data in entries.items():
            zf.writestr(name, data)
    return buffer.getvalue()


def encrypted_zip(entries: dict[str, bytes], password: str, aes: bool = False) -> bytes:
    """Zip `entries` (name to content) encrypted with `password`, AES-256 when `aes` is set."""
    return _aes_zip(entries, password) if aes else _zipcrypto_zip(entries, password)
