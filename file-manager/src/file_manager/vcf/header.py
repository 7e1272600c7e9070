"""What the upload path checks before a file is stored, shared with the validator: the first
bytes (a BGZF block) and the header, line by line.

Kept apart from :mod:`file_manager.vcf.validator` (which scans the records with numpy, in the
validation child process) so that the service itself never imports numpy (~14 MB per process)
to check an upload's head.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from file_manager.vcf import messages as msg
from file_manager.vcf.bgzf import block_size, looks_like_gzip

_CONTIG = re.compile(rb"^##contig=<(?:.*,)?ID=([^,>]+)(?:.*,)?length=(\d+)")
_CONTIG_LEN_FIRST = re.compile(rb"^##contig=<(?:.*,)?length=(\d+)(?:.*,)?ID=([^,>]+)")


@dataclass
class Issue:
    message: str
    line: int | None = None
    record: str | None = None


class Rejected(Exception):
    """A problem that stops validation at once (nothing after it can be checked)."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.issue = Issue(message, line)


class HeaderParser:
    """Consumes the header line by line; used on the full file and on an upload's first blocks."""

    def __init__(self, max_header_bytes: int) -> None:
        self.max_header_bytes = max_header_bytes
        self.size = 0
        self.lines = 0
        self.contigs: dict[str, int] = {}
        self.samples: list[str] = []
        self.duplicates: list[str] = []
        self.complete = False

    def add(self, line: bytes) -> bool:
        """Take one header line (without newline); True once the ``#CHROM`` line is read."""
        self.lines += 1
        self.size += len(line) + 1
        if self.size > self.max_header_bytes:
            raise Rejected(
                msg.malformed(msg.HEADER_TOO_LARGE.format(limit=self.max_header_bytes)),
                self.lines,
            )
        if self.lines == 1 and not line.startswith(b"##fileformat=VCF"):
            raise Rejected(msg.malformed(msg.NOT_VCF), 1)
        if line.startswith(b"##"):
            self._meta(line)
            return False
        if line.startswith(b"#CHROM"):
            self._columns(line)
            self.complete = True
            return True
        raise Rejected(msg.malformed(msg.NO_CHROM_LINE), self.lines)

    def _meta(self, line: bytes) -> None:
        if not line.startswith(b"##contig="):
            return
        if match := _CONTIG.match(line):
            name, length = match.group(1), match.group(2)
        elif match := _CONTIG_LEN_FIRST.match(line):
            length, name = match.group(1), match.group(2)
        else:
            return
        self.contigs[name.decode("utf-8", "replace")] = int(length)

    def _columns(self, line: bytes) -> None:
        columns = line.rstrip(b"\r").split(b"\t")
        if len(columns) < 10:
            raise Rejected(msg.malformed(msg.NO_SAMPLES), self.lines)
        self.samples = [c.decode("utf-8", "replace") for c in columns[9:]]
        seen: set[str] = set()
        for sample in self.samples:
            if sample in seen and sample not in self.duplicates:
                self.duplicates.append(sample)
            seen.add(sample)

    def finish(self) -> None:
        """The file ended: a header without ``#CHROM`` is refused."""
        if not self.complete:
            if self.lines == 0:
                raise Rejected(msg.malformed(msg.NOT_VCF), None)
            raise Rejected(msg.malformed(msg.NO_CHROM_LINE), self.lines)


def check_head_bytes(head: bytes) -> None:
    """The first bytes must open a BGZF block (plain gzip and anything else are refused)."""
    if block_size(head) is not None:
        return
    if looks_like_gzip(head):
        raise Rejected(msg.malformed(msg.PLAIN_GZIP))
    raise Rejected(msg.malformed(msg.NOT_BGZF))
