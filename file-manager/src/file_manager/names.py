"""User-supplied file names: checked, never trusted, never used as a storage path.

A name is display metadata only (the storage key is a random UUID). Still, a name with a path
separator, ``..``, a NUL or another control character, a bidi override or an absurd length is
refused outright (422), so nothing downstream (a download's Content-Disposition, a job's file
list, a shell script a user writes) ever sees one.
"""

from __future__ import annotations

import unicodedata
from urllib.parse import quote

from fedimpute_shared.problems import FieldProblem, Unprocessable
from file_manager.models import FileFormat

_VCF_SUFFIXES = (".vcf.gz", ".vcf.bgz")
_PLINK_SUFFIXES = (".bed", ".bim", ".fam")


def check_filename(name: str | None, *, max_bytes: int, source: str = "filename") -> str:
    """The name, NFC-normalised, or a 422 saying what is wrong with it."""
    if name is None or not name.strip():
        raise _bad(source, "a file name is required (give it in the query, a header or the form)")
    name = unicodedata.normalize("NFC", name)
    if len(name.encode("utf-8")) > max_bytes:
        raise _bad(source, f"the file name is longer than {max_bytes} bytes")
    if "/" in name or "\\" in name:
        raise _bad(source, "the file name must not contain a path separator ('/' or '\\')")
    if name in (".", "..") or name.startswith(".."):
        raise _bad(source, "the file name must not be '.' or '..' or start with '..'")
    for char in name:
        category = unicodedata.category(char)
        if category == "Cc" or category in ("Cf", "Zl", "Zp", "Cs", "Co", "Cn"):
            raise _bad(
                source,
                f"the file name contains a control or invisible character (U+{ord(char):04X})",
            )
    if name != name.strip():
        raise _bad(source, "the file name must not start or end with spaces")
    return name


def _bad(source: str, message: str) -> Unprocessable:
    return Unprocessable(
        message,
        errors=[
            FieldProblem(pointer=f"#/{source}", field=source, message=message, code="filename")
        ],
    )


def file_format(name: str) -> FileFormat:
    lowered = name.lower()
    if lowered.endswith(_VCF_SUFFIXES):
        return FileFormat.VCF
    if lowered.endswith(_PLINK_SUFFIXES):
        return FileFormat.PLINK
    return FileFormat.OTHER


def refuse_uncompressed_vcf(name: str) -> None:
    """The servers take only bgzipped VCF (§7 rule 2); say so before any byte is read."""
    if name.lower().endswith(".vcf"):
        raise Unprocessable(
            "VCF files must be compressed with bgzip and named *.vcf.gz "
            "(run `bgzip file.vcf`, then upload file.vcf.gz)"
        )


def content_type(name: str) -> str:
    lowered = name.lower()
    if lowered.endswith((".gz", ".bgz")):
        return "application/gzip"
    if lowered.endswith((".txt", ".log", ".bim", ".fam")):
        return "text/plain; charset=utf-8"
    if lowered.endswith(".html"):
        return "text/html; charset=utf-8"
    if lowered.endswith(".json"):
        return "application/json"
    if lowered.endswith(".zip"):
        return "application/zip"
    return "application/octet-stream"


def content_disposition(name: str) -> str:
    """RFC 6266: an ASCII fallback ``filename`` plus the exact name as ``filename*``."""
    fallback = (
        "".join(c if c.isascii() and (c.isalnum() or c in "._-+ ()") else "_" for c in name).strip()
        or "download"
    )
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"
