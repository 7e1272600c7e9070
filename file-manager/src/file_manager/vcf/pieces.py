"""The records of a VCF, a few megabytes at a time, checked with numpy over the whole piece.

A record costs a few microseconds when Python splits it and looks at each field, which is most of
a validation's time: a 1 GB file has millions of them. Almost every piece of a real file is
*ordinary*: every line is a record of the file's one chromosome with a numeric, non-decreasing
POS and exactly the header's number of columns. :func:`ordinary_records` proves that for a whole
piece at once with array operations on its bytes, and hands back the few fields the statistics
need; anything else (a comment line, a CR, another chromosome, an odd POS, a wrong column count,
fixed columns too wide to look at cheaply) makes it answer None, and the validator then reads that
piece line by line with the exact rules and messages. So the fast path never decides anything
the line-by-line path would decide differently: it only recognises pieces with nothing to report
but allele findings, which it leaves to the validator, record by record.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import sliding_window_view

Ints = npt.NDArray[np.int64]
Bools = npt.NDArray[np.bool_]
Bytes = npt.NDArray[np.uint8]

TAB, NEWLINE, HASH, CR, SLASH = 9, 10, 35, 13, 47
FIXED_TABS = 9  # the tabs that close CHROM ... FORMAT
MAX_POS_DIGITS = 10  # VCF positions are 32-bit; longer ones go line by line
# The first bytes of each line looked at for the fixed columns; a wider line is retried once,
# unless the piece has so many lines that the wider window would cost too much memory.
WINDOWS = (64, 512)
MAX_WINDOW_BYTES = 32 * 1024**2
_ACGT = np.zeros(256, dtype=bool)
_ACGT[list(b"ACGT")] = True


@dataclass
class Piece:
    """Complete lines of the decompressed text, each ending with a newline."""

    data: bytes
    newlines: Ints  # offsets of the newlines in ``data``
    first_line: int  # the line number (1-based, in the file) of its first line

    def starts(self) -> Ints:
        starts = np.empty(len(self.newlines), dtype=np.int64)
        if len(starts):
            starts[0] = 0
            starts[1:] = self.newlines[:-1] + 1
        return starts

    def lines(self) -> list[tuple[int, bytes]]:
        """(line number, line without its newline) for each line."""
        lines = self.data.split(b"\n")
        lines.pop()  # after the last newline
        return list(enumerate(lines, self.first_line))

    def after(self, count: int) -> Piece:
        """The same piece without its first ``count`` lines."""
        cut = int(self.newlines[count - 1]) + 1
        return Piece(self.data[cut:], self.newlines[count:] - cut, self.first_line + count)


@dataclass
class Records:
    """What the statistics need from an ordinary piece (one entry per record)."""

    positions: Ints
    simple_snp: Bools  # REF and ALT one base each of A/C/G/T, different
    genotype_format: Bools  # FORMAT is GT or starts with GT:
    tabs: Ints  # (records, 9): absolute offsets of the fixed columns' closing tabs
    starts: Ints

    def field(self, data: bytes, record: int, column: int) -> bytes:
        """Column ``column`` (0 = CHROM ... 8 = FORMAT) of record ``record``."""
        begin = self.starts[record] if column == 0 else self.tabs[record, column - 1] + 1
        return data[int(begin) : int(self.tabs[record, column])]

    def samples(self, data: bytes, record: int, end: int) -> bytes:
        return data[int(self.tabs[record, 8]) + 1 : end]


def ordinary_records(
    piece: Piece, chrom: bytes, previous: int, sample_count: int
) -> Records | None:
    """The records of ``piece`` if it is ordinary (see the module), else None."""
    data, newlines = piece.data, piece.newlines
    text = np.frombuffer(data, dtype=np.uint8)
    starts = piece.starts()
    lengths = newlines - starts
    if not len(newlines) or CR in data or (lengths == 0).any() or (text[starts] == HASH).any():
        return None
    if not _column_counts_are(text, starts, lengths, FIXED_TABS - 1 + sample_count):
        return None
    found = _fixed_tabs(data, starts, lengths)
    if found is None:
        return None
    window, tabs = found
    rows = np.arange(len(starts))
    if not _all_chromosome(window, tabs, chrom):
        return None
    positions = _positions(window, tabs)
    if positions is None or positions[0] < previous or (np.diff(positions) < 0).any():
        return None
    ref, alt = window[rows, tabs[:, 2] + 1], window[rows, tabs[:, 3] + 1]
    simple_snp = (
        (tabs[:, 3] - tabs[:, 2] == 2)
        & (tabs[:, 4] - tabs[:, 3] == 2)
        & _ACGT[ref]
        & _ACGT[alt]
        & (ref != alt)
    )
    format_width = tabs[:, 8] - tabs[:, 7] - 1
    third = np.minimum(tabs[:, 7] + 3, tabs[:, 8])  # the tab itself when FORMAT is two bytes
    genotype_format = (
        (window[rows, tabs[:, 7] + 1] == ord("G"))
        & (window[rows, tabs[:, 7] + 2] == ord("T"))
        & ((format_width == 2) | (window[rows, third] == ord(":")))
    )
    return Records(positions, simple_snp, genotype_format, tabs + starts[:, None], starts)


def _column_counts_are(text: Bytes, starts: Ints, lengths: Ints, tabs_per_line: int) -> bool:
    """Every line has exactly ``tabs_per_line`` tabs (counted in 16 bits when no line is long
    enough to hold 65,536 of them, so the counts cannot wrap)."""
    is_tab = text == TAB
    wide = int(lengths.max()) >= 2**16
    counts = np.add.reduceat(is_tab.view(np.uint8), starts, dtype=np.uint32 if wide else np.uint16)
    return bool((counts == tabs_per_line).all())


def _fixed_tabs(data: bytes, starts: Ints, lengths: Ints) -> tuple[Bytes, Ints] | None:
    """The first bytes of every line (one row each) and, per row, the offsets of its first nine
    tabs; None when a line's fixed columns are wider than the widest window."""
    padded = np.frombuffer(data + bytes(WINDOWS[-1]), dtype=np.uint8)  # rows never run out
    for width in WINDOWS:
        if width * len(starts) > MAX_WINDOW_BYTES:
            return None
        window = sliding_window_view(padded, width)[starts]  # (lines, width), one copy
        found = np.flatnonzero(window == TAB)
        rows = found >> (width.bit_length() - 1)  # the widths are powers of two
        counts = np.bincount(rows, minlength=len(starts))
        if (counts < FIXED_TABS).any():
            continue
        first = np.cumsum(counts) - counts
        tabs = found[first[:, None] + np.arange(FIXED_TABS)] & (width - 1)
        if (tabs[:, -1] >= lengths).any():  # the window ran into the next line
            return None
        return window, tabs
    return None


def _all_chromosome(window: Bytes, tabs: Ints, chrom: bytes) -> bool:
    width = len(chrom)
    if not (tabs[:, 0] == width).all():
        return False
    expected = np.frombuffer(chrom, dtype=np.uint8)
    return bool((window[:, :width] == expected).all())


def _positions(window: Bytes, tabs: Ints) -> Ints | None:
    """POS of every row, when each is 1 to 10 ASCII digits (what ``int()`` reads the same).

    Every row's CHROM has the same width, so POS starts in the same column of each row: the
    digits are read column by column (Horner's rule), each row stopping at its own width."""
    start = int(tabs[0, 0]) + 1
    digits = tabs[:, 1] - start
    if int(digits.min()) < 1 or int(digits.max()) > MAX_POS_DIGITS:
        return None
    positions = np.zeros(len(tabs), dtype=np.int64)
    for column in range(int(digits.max())):
        digit = window[:, start + column] - np.uint8(ord("0"))  # wraps below "0": > 9 too
        inside = column < digits
        if (inside & (digit > 9)).any():
            return None
        positions = np.where(inside, positions * 10 + digit, positions)
    return positions
