"""The VCF validator: external-protocols.md §7's file-level rules, statistics and build detection.

It reads the file once, block by block (never whole), with a cap on the decompressed size (and on
the compression ratio: a bomb stops early), on the header size and on the line length. When no
rule is broken it builds the tabix index with htslib (``pysam.tabix_index``), which is rule 1 of
the servers (``tabix -p vcf``). It runs in a child process (:mod:`file_manager.vcf.runner`) that
the service bounds in time and memory.
"""

from __future__ import annotations

import itertools
import multiprocessing
import re
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from file_manager.vcf import messages as msg
from file_manager.vcf.bgzf import BGZF_EOF, BgzfError, decompressed_chunks
from file_manager.vcf.builds import Build, bare, detect_build, length_for
from file_manager.vcf.header import HeaderParser, Issue, Rejected, check_head_bytes
from file_manager.vcf.pieces import NEWLINE, Ints, Piece, Records, ordinary_records

ALLOWED_CHROMOSOMES = frozenset([*(str(i) for i in range(1, 24)), "X", "MT"])
MAX_REPORTED_ERRORS = 100
_ACGT = frozenset(b"ACGT")
_BASES = frozenset([b"A", b"C", b"G", b"T"])
# A "/" inside a sample's GT subfield (the text before its first ":").
_UNPHASED_GT = re.compile(rb"(?:^|\t)[^\t:]*/")


@dataclass(frozen=True)
class Limits:
    max_decompressed_bytes: int = 500 * 1024**3
    max_compression_ratio: float = 1000.0
    max_header_bytes: int = 16 * 1024**2
    max_line_bytes: int = 64 * 1024**2
    min_samples_warning: int = 20


@dataclass
class Statistics:
    samples: int = 0
    variants: int = 0
    chromosome: str | None = None
    first_position: int | None = None
    last_position: int | None = None
    phased: bool | None = None
    snps: int = 0
    indels: int = 0
    other_variants: int = 0  # symbolic alleles, missing ALT
    multi_allelic: int = 0
    non_acgt: int = 0
    duplicate_positions: int = 0
    decompressed_bytes: int = 0


@dataclass
class Report:
    errors: list[Issue] = field(default_factory=list)
    warnings: list[Issue] = field(default_factory=list)
    statistics: Statistics = field(default_factory=Statistics)
    build: dict[str, Any] = field(default_factory=dict)
    index_built: bool = False
    errors_not_shown: int = 0

    def error(self, message: str, line: int | None = None, record: str | None = None) -> None:
        if len(self.errors) >= MAX_REPORTED_ERRORS:
            self.errors_not_shown += 1
            return
        self.errors.append(Issue(message, line, record))

    def warn(self, message: str, line: int | None = None) -> None:
        self.warnings.append(Issue(message, line))

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": "invalid" if self.errors else "valid",
            "errors": [asdict(e) for e in self.errors],
            "errors_not_shown": self.errors_not_shown,
            "warnings": [asdict(w) for w in self.warnings],
            "statistics": asdict(self.statistics),
            "build": self.build,
            "index_built": self.index_built,
        }


# ------------------------------------------------------------------------------- file


def check_container(path: Path) -> None:
    """BGZF magic at the start, the EOF marker at the end (else truncated)."""
    size = path.stat().st_size
    if size == 0:
        raise Rejected(msg.EMPTY_FILE)
    with open(path, "rb") as f:
        head = f.read(HEAD_PROBE)
        f.seek(max(0, size - len(BGZF_EOF)))
        tail = f.read()
    check_head_bytes(head)
    if tail != BGZF_EOF:
        raise Rejected(msg.malformed(msg.TRUNCATED))


HEAD_PROBE = 18 + 64


def _pieces(path: Path, limits: Limits, stats: Statistics) -> Iterator[Piece]:
    """The decompressed text in pieces of whole lines (the last line gets its missing newline),
    refusing a compression bomb and over-long lines."""
    ceiling = min(
        limits.max_decompressed_bytes,
        int(path.stat().st_size * limits.max_compression_ratio),
    )
    rest = b""
    lines_before = 0
    try:
        for block in decompressed_chunks(path):
            stats.decompressed_bytes += len(block)
            if stats.decompressed_bytes > ceiling:
                raise Rejected(msg.malformed(msg.DECOMPRESSED_TOO_LARGE.format(limit=ceiling)))
            data = rest + block if rest else block
            newlines = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == NEWLINE)
            cut = int(newlines[-1]) + 1 if len(newlines) else 0
            rest = data[cut:]
            if len(data) > limits.max_line_bytes:
                _check_line_lengths(newlines, len(rest), limits.max_line_bytes, lines_before)
            if cut:
                yield Piece(data[:cut] if rest else data, newlines, lines_before + 1)
            lines_before += len(newlines)
    except BgzfError as exc:
        reason = {"not-bgzf": msg.NOT_BGZF, "truncated": msg.TRUNCATED}.get(
            str(exc), msg.BAD_BGZF_BLOCK
        )
        raise Rejected(msg.malformed(reason)) from None
    if rest:
        yield Piece(rest + b"\n", np.array([len(rest)], dtype=np.int64), lines_before + 1)


def _check_line_lengths(newlines: Ints, rest: int, cap: int, lines_before: int) -> None:
    """Refuse the first line longer than ``cap`` (the unfinished ``rest`` counts as a line)."""
    lengths = np.diff(newlines, prepend=-1) - 1
    too_long = np.flatnonzero(lengths > cap)
    if len(too_long) or rest > cap:
        where = lines_before + (int(too_long[0]) if len(too_long) else len(newlines)) + 1
        raise Rejected(msg.malformed(msg.LINE_TOO_LONG.format(line=where, limit=cap)), where)


def validate(
    path: Path,
    *,
    declared_build: Build | None = None,
    limits: Limits | None = None,
    index_path: Path | None = None,
) -> Report:
    """Validate the bgzipped VCF at ``path``; write its tabix index to ``index_path`` if valid."""
    limits = limits or Limits()
    report = Report()
    indexer: _IndexBuilder | None = None
    try:
        check_container(path)
        indexer = _IndexBuilder(path, index_path) if index_path is not None else None
        pieces = _pieces(path, limits, report.statistics)
        header, first = _read_header(pieces, limits)
        _header_findings(header, report, limits)
        _RecordScan(report, header).run(itertools.chain(first, pieces))
    except Rejected as rejected:
        report.errors.insert(0, rejected.issue)
        if indexer is not None:
            indexer.cancel()
        return report
    _check_build(report, header, declared_build)
    _qc_warnings(report)
    if indexer is not None:
        if report.errors:
            indexer.cancel()
        elif (failure := indexer.result()) is not None:
            report.error(msg.malformed(failure))
        else:
            report.index_built = True
    return report


def _read_header(pieces: Iterator[Piece], limits: Limits) -> tuple[HeaderParser, list[Piece]]:
    """The header, and what follows it in the piece where it ends."""
    header = HeaderParser(limits.max_header_bytes)
    for piece in pieces:
        for count, (_, line) in enumerate(_split_lines(piece), 1):
            if header.add(line.rstrip(b"\r")):
                rest = piece.after(count) if count < len(piece.newlines) else None
                return header, [rest] if rest is not None else []
    header.finish()
    return header, []


def _split_lines(piece: Piece) -> Iterator[tuple[int, bytes]]:
    """The lines of a piece one at a time (a header piece may hold megabytes of one-byte
    lines that a refusal on the first one never needs split)."""
    start = 0
    for number, end in enumerate(piece.newlines.tolist(), piece.first_line):
        yield number, piece.data[start:end]
        start = end + 1


def _header_findings(header: HeaderParser, report: Report, limits: Limits) -> None:
    report.statistics.samples = len(header.samples)
    for duplicate in header.duplicates:
        report.error(msg.duplicate_sample(duplicate), header.lines)
    if 0 < len(header.samples) < limits.min_samples_warning:
        report.warn(
            msg.AT_LEAST_20_SAMPLES.format(min=limits.min_samples_warning)
            + f" (this file has {len(header.samples)}; most imputation servers refuse fewer)"
        )


class _RecordScan:
    """One pass over the records: rules 3-6 and 11 of §7, and the statistics.

    Each piece of records is first offered to :func:`~file_manager.vcf.pieces.ordinary_records`
    (whole-piece checks with numpy); a piece it does not vouch for is read line by line
    (:meth:`line`), which is where every finding is worded."""

    def __init__(self, report: Report, header: HeaderParser) -> None:
        self.report = report
        self.stats = report.statistics
        self.header = header
        self.expected_tabs = len(header.samples) - 1
        self.invalid_reported: set[bytes] = set()
        self.chrom: bytes | None = None
        self.other_chrom_reported = False
        self.unsorted_reported = False
        self.previous = 0
        self.unphased = False
        self.saw_gt = False

    def run(self, pieces: Iterable[Piece]) -> None:
        stats = self.stats
        for piece in pieces:
            if self.chrom is None and len(piece.newlines) > 1:
                self.line(piece.first_line, piece.data[: int(piece.newlines[0])])
                piece = piece.after(1)  # the first record names the chromosome
            records = None
            if self.chrom is not None:
                records = ordinary_records(
                    piece, self.chrom, self.previous, len(self.header.samples)
                )
            if records is None:
                for lineno, line in piece.lines():
                    self.line(lineno, line)
            else:
                self._ordinary(piece, records)
        if stats.variants == 0:
            self.report.error(msg.NO_VARIANTS)
        stats.phased = (not self.unphased) if self.saw_gt else None
        if stats.variants and not self.saw_gt:
            self.report.warn("no record has a GT (genotype) field: nothing to impute from")

    def line(self, lineno: int, line: bytes) -> None:
        """One line after the header, checked on its own."""
        if not line or line.startswith(b"#"):
            return
        parts = line.split(b"\t", 9)
        if len(parts) < 10:
            self._short_line(parts, lineno)
            return
        chrom, pos_text, vid, ref, alt, fmt, samples = (
            parts[0], parts[1], parts[2], parts[3], parts[4], parts[8], parts[9],
        )  # fmt: skip
        if chrom != self.chrom:
            self._new_chromosome(chrom, lineno)
        try:
            pos = int(pos_text)
        except ValueError:
            self.report.error(msg.BAD_POSITION.format(line=lineno, pos=pos_text.decode()))
            return
        self._position(pos, lineno)
        if len(ref) == 1 and len(alt) == 1 and ref in _BASES and alt in _BASES and ref != alt:
            self.stats.snps += 1  # the common case, without the general allele checks
        else:
            self._alleles(ref, alt, vid, chrom, pos, lineno)
        if samples.count(b"\t") != self.expected_tabs:
            self._sample_count(samples, lineno)
        self._phasing(fmt, samples)
        self.stats.variants += 1

    def _phasing(self, fmt: bytes, samples: bytes) -> None:
        if fmt == b"GT":
            self.saw_gt = True
            if not self.unphased and b"/" in samples:
                self.unphased = True
        elif fmt.startswith(b"GT:"):
            self.saw_gt = True
            if not self.unphased and _UNPHASED_GT.search(samples.rstrip(b"\r")):
                self.unphased = True

    def _ordinary(self, piece: Piece, records: Records) -> None:
        """Take the findings of a piece :func:`ordinary_records` vouched for: what
        :meth:`line` would have found, record by record, without splitting a line."""
        stats, data, positions = self.stats, piece.data, records.positions
        if stats.first_position is None:
            stats.first_position = int(positions[0])
        stats.duplicate_positions += int(
            np.count_nonzero(np.diff(positions, prepend=self.previous) == 0)
        )
        self.previous = int(positions[-1])
        stats.last_position = max(self.previous, stats.last_position or 0)
        stats.snps += int(np.count_nonzero(records.simple_snp))
        assert self.chrom is not None
        for record in np.flatnonzero(~records.simple_snp).tolist():
            self._alleles(
                records.field(data, record, 3),
                records.field(data, record, 4),
                records.field(data, record, 2),
                self.chrom,
                int(positions[record]),
                piece.first_line + record,
            )
        if records.genotype_format.any():
            self.saw_gt = True
            if not self.unphased and b"/" in data:
                self._slashes(piece, records)
        stats.variants += len(positions)

    def _slashes(self, piece: Piece, records: Records) -> None:
        """Unphased? Only the records with a "/" after FORMAT need a look."""
        slashes = np.flatnonzero(np.frombuffer(piece.data, dtype=np.uint8) == ord("/"))
        owners = np.searchsorted(piece.newlines, slashes)
        in_samples = slashes > records.tabs[owners, 8]
        candidates = np.unique(owners[in_samples & records.genotype_format[owners]])
        for record in candidates.tolist():
            end = int(piece.newlines[record])
            self._phasing(
                records.field(piece.data, record, 8), records.samples(piece.data, record, end)
            )
            if self.unphased:
                return

    def _short_line(self, parts: list[bytes], lineno: int) -> None:
        if len(parts) < 3:
            self.report.error(msg.NOT_TAB_DELIMITED, lineno)
        else:
            self.report.error(msg.TOO_FEW_COLUMNS.format(line=lineno, found=len(parts)), lineno)

    def _new_chromosome(self, chrom: bytes, lineno: int) -> None:
        name = chrom.decode("utf-8", "replace")
        if self.chrom is None:
            self.chrom = chrom
            self.stats.chromosome = name
        elif not self.other_chrom_reported:
            self.other_chrom_reported = True
            self.report.error(msg.MORE_THAN_ONE_CHROMOSOME, lineno, name)
        if chrom not in self.invalid_reported and bare(name) not in ALLOWED_CHROMOSOMES:
            self.invalid_reported.add(chrom)
            self.report.error(msg.invalid_chromosome(name), lineno, name)

    def _position(self, pos: int, lineno: int) -> None:
        stats = self.stats
        if stats.first_position is None:
            stats.first_position = pos
        if pos < self.previous:
            if not self.unsorted_reported:
                self.unsorted_reported = True
                self.report.error(
                    msg.malformed(
                        msg.UNSORTED.format(previous=self.previous, current=pos, line=lineno)
                    ),
                    lineno,
                )
        elif pos == self.previous:
            stats.duplicate_positions += 1
        self.previous = pos
        stats.last_position = max(pos, stats.last_position or 0)

    def _alleles(
        self, ref: bytes, alt: bytes, vid: bytes, chrom: bytes, pos: int, lineno: int
    ) -> None:
        stats = self.stats
        alts = alt.split(b",") if b"," in alt else [alt]
        if len(alts) > 1:
            stats.multi_allelic += 1
        if ref.upper() in (a.upper() for a in alts):
            self.report.error(
                msg.ref_equals_alt(vid.decode("utf-8", "replace"), ref.decode(), alt.decode()),
                lineno,
                f"{chrom.decode('utf-8', 'replace')}:{pos}",
            )
        if alt == b"." or any(a.startswith(b"<") or a == b"*" for a in alts):
            stats.other_variants += 1
            return
        if not (set(ref) <= _ACGT and all(set(a) <= _ACGT for a in alts)):
            stats.non_acgt += 1
        if len(ref) == 1 and all(len(a) == 1 for a in alts):
            stats.snps += 1
        else:
            stats.indels += 1

    def _sample_count(self, samples: bytes, lineno: int) -> None:
        found = samples.rstrip(b"\r").count(b"\t") + 1
        expected = self.expected_tabs + 1
        if found != expected:
            self.report.error(
                msg.SAMPLE_COUNT_MISMATCH.format(line=lineno, found=found, expected=expected),
                lineno,
            )


def _check_build(report: Report, header: HeaderParser, declared: Build | None) -> None:
    stats = report.statistics
    detection = detect_build(header.contigs, stats.chromosome)
    report.build = detection.as_dict(declared)
    by_lengths = detection.detected if detection.detected_from == "contig_lengths" else None
    if declared and by_lengths and declared != by_lengths:
        report.warn(
            f"the declared build is {declared} but the ##contig lengths are those of "
            f"{by_lengths}; check the build before imputing"
        )
    build = declared or by_lengths
    chrom = stats.chromosome
    if chrom is None or bare(chrom) not in ALLOWED_CHROMOSOMES:
        return
    if build is None:
        report.warn(
            "the build could not be determined (no ##contig lengths); declare it (hg19 or hg38)"
        )
        return
    if (build == "hg19") == chrom.startswith("chr"):
        report.error(msg.wrong_build_encoding(chrom, build), None, chrom)
    length = length_for(build, chrom)
    if length and stats.last_position and stats.last_position > length:
        report.warn(
            f"position {stats.last_position:,} is beyond the end of {chrom} in {build} "
            f"({length:,}): is the build right?"
        )


def _qc_warnings(report: Report) -> None:
    stats = report.statistics
    dropped = [
        (stats.non_acgt, "have alleles other than A/C/G/T"),
        (stats.duplicate_positions, "repeat the position of the previous variant"),
        (stats.indels, "are indels"),
        (stats.multi_allelic, "are multi-allelic"),
    ]
    for count, what in dropped:
        if count:
            report.warn(f"{count} variant(s) {what}; imputation servers drop them in QC")
    if stats.phased is False:
        report.warn("the genotypes are unphased ('/'): choose a phasing algorithm for the job")


class _IndexBuilder:
    """Builds the tabix index with htslib in a forked process while the scan runs (the two
    passes then cost the time of the longer one on two cores). Rule 1 of §7: it refuses what
    ``tabix -p vcf`` refuses."""

    def __init__(self, path: Path, index_path: Path) -> None:
        context = multiprocessing.get_context("fork")
        self._receive, send = context.Pipe(duplex=False)
        self._process = context.Process(
            target=_index_child, args=(path, index_path, send), daemon=True
        )
        self._process.start()
        send.close()

    def result(self) -> str | None:
        """None when the index was built, else htslib's complaint."""
        self._process.join()
        try:
            message: str | None = self._receive.recv() if self._receive.poll() else "crashed"
        except EOFError:
            message = "tabix could not index the file"
        if self._process.exitcode != 0 and message is None:
            message = "tabix could not index the file"
        return message

    def cancel(self) -> None:
        if self._process.is_alive():
            self._process.kill()
        self._process.join()


def _index_child(path: Path, index_path: Path, send: Any) -> None:
    import pysam

    with tempfile.TemporaryDirectory(prefix="fm-index-") as tmp:
        link = Path(tmp) / "input.vcf.gz"
        link.symlink_to(path)
        try:
            pysam.tabix_index(str(link), preset="vcf", force=True, index=str(index_path))
        except (OSError, ValueError) as exc:
            send.send(str(exc) or "tabix could not index the file")
            return
    send.send(None)
