"""Result archives: a downloaded zip that is encrypted (Cloudgene's `chr_<n>.zip`, the sandbox WES
runs' zips) is stored in a temporary file, opened with the job's password and streamed back as a
plain zip of the same entries, so what reaches file-manager needs no password. Everything else
streams straight through.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import zipfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx

from job_processor.adapters._streams import stream_get
from job_processor.adapters.base import ResultUnreadable

__all__ = ["decrypt_zip", "fetch_result"]

_CHUNK = 1024 * 1024


@asynccontextmanager
async def fetch_result(
    client: httpx.AsyncClient,
    url: str,
    name: str,
    *,
    password: str | None,
    headers: dict[str, str] | None = None,
    workdir: Path | None = None,
) -> AsyncIterator[AsyncIterator[bytes]]:
    """Stream the result at `url`; a `.zip` with a `password` is decrypted on the way."""
    what = f"download {name}"
    if not (password and name.lower().endswith(".zip")):
        async with stream_get(client, url, what, headers=headers) as chunks:
            yield chunks
        return
    folder = Path(tempfile.mkdtemp(prefix="fedimpute-result-", dir=workdir))
    try:
        encrypted, plain = folder / "encrypted.zip", folder / "plain.zip"
        async with stream_get(client, url, what, headers=headers) as chunks:
            with encrypted.open("wb") as out:
                async for chunk in chunks:
                    out.write(chunk)
        await asyncio.to_thread(decrypt_zip, encrypted, plain, password, name)
        encrypted.unlink()
        yield _file_chunks(plain)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


async def _file_chunks(path: Path) -> AsyncIterator[bytes]:
    with path.open("rb") as source:
        while chunk := source.read(_CHUNK):
            yield chunk


def decrypt_zip(source: Path, target: Path, password: str, label: str = "result") -> None:
    """Rewrite an encrypted zip (ZipCrypto or AES) as a plain one, entry by entry in 1 MiB
    chunks; a wrong password or a damaged archive is `ResultUnreadable`."""
    # Imported here, not at start: with it come pycryptodome and, through cffi, pycparser
    # parsing C declarations (~2 MB and CPU at every start), for results only.
    import pyzipper

    try:
        with (
            pyzipper.AESZipFile(source) as encrypted,
            zipfile.ZipFile(target, "w", allowZip64=True) as plain,
        ):
            encrypted.setpassword(password.encode())
            for info in encrypted.infolist():
                if info.is_dir():
                    continue
                packed = (
                    zipfile.ZIP_STORED if info.filename.endswith(".gz") else zipfile.ZIP_DEFLATED
                )
                entry = zipfile.ZipInfo(info.filename, info.date_time)
                entry.compress_type = packed
                with (
                    encrypted.open(info) as reader,
                    plain.open(entry, "w", force_zip64=info.file_size > 2**31) as writer,
                ):
                    shutil.copyfileobj(reader, writer, _CHUNK)
    except RuntimeError as exc:  # zipfile/pyzipper: "Bad password for file ..."
        raise ResultUnreadable(
            f"{label}: the zip does not open with the job's password ({exc})"
        ) from None
    except (zipfile.BadZipFile, pyzipper.BadZipFile, EOFError, OSError, ValueError) as exc:
        raise ResultUnreadable(f"{label}: the zip is damaged ({type(exc).__name__})") from None
