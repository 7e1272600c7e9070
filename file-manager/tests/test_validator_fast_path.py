"""The validator's whole-piece checks (``vcf/pieces.py``) decide nothing the line-by-line path
would decide differently: every file below gives the same report with them and without them
(every piece read line by line), with the file in one piece and cut into many small ones."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest

from file_manager.testdata import VcfSpec, bgzf_blocks, header_lines, record_lines
from file_manager.vcf import bgzf, pieces, validator
from file_manager.vcf.validator import validate

BLOCK = 65280


def write_text(path: Path, text: bytes) -> Path:
    path.write_bytes(b"".join(bgzf_blocks(text[i : i + BLOCK] for i in range(0, len(text), BLOCK))))
    return path


def spec_text(spec: VcfSpec) -> list[str]:
    return [*header_lines(spec), *record_lines(spec)]


def edited(spec: VcfSpec, edit, every: int = 97) -> bytes:
    """The text of ``spec`` with ``edit(line)`` applied to every ``every``-th record."""
    header = header_lines(spec)
    records = [edit(r) if i % every == every - 1 else r for i, r in enumerate(record_lines(spec))]
    return ("\n".join([*header, *records]) + "\n").encode()


def replace_column(column: int, value: str):
    def edit(line: str) -> str:
        parts = line.split("\t")
        parts[column] = value
        return "\t".join(parts)

    return edit


BIG = VcfSpec(samples=25, variants=3000)
SPECS = {
    "ordinary": BIG,
    "unphased": VcfSpec(samples=25, variants=3000, phased=False),
    "alleles and duplicates": VcfSpec(
        samples=21,
        variants=3000,
        indel_every=7,
        multiallelic_every=11,
        non_acgt_every=13,
        duplicate_position_every=30,
    ),
    "duplicate sample": VcfSpec(variants=500, duplicate_sample=True),
    "second chromosome": VcfSpec(variants=3000, second_chromosome="21"),
    "unsorted": VcfSpec(variants=3000, unsorted=True),
    "ref equals alt": VcfSpec(variants=3000, ref_equals_alt=True),
    "too few columns": VcfSpec(variants=3000, too_few_columns=True),
    "space delimited": VcfSpec(variants=3000, space_delimited=True),
    "hg19 with chr": VcfSpec(variants=800, build="hg19", chr_prefix=True),
    "chrY": VcfSpec(variants=800, chromosome="Y"),
    "one sample": VcfSpec(samples=1, variants=3000),
}
EDITS = {
    "CRLF": lambda spec: edited(spec, lambda r: r + "\r"),
    "comment and empty lines": lambda spec: edited(spec, lambda r: "#note\n\n" + r),
    "POS with a sign": lambda spec: edited(spec, replace_column(1, "+123456789")),
    "POS not a number": lambda spec: edited(spec, replace_column(1, "12a")),
    "POS of 11 digits": lambda spec: edited(spec, replace_column(1, "99999999999")),
    "POS zero": lambda spec: edited(spec, replace_column(1, "0"), every=3000),
    "long INFO (wider window)": lambda spec: edited(spec, replace_column(7, "AF=0." + "1" * 80)),
    "very long INFO (line by line)": lambda spec: edited(spec, replace_column(7, "X=" + "1" * 900)),
    "slash in INFO of phased data": lambda spec: edited(spec, replace_column(7, "A/B")),
    "unphased only after a colon": lambda spec: edited(
        spec, lambda r: r.replace("\tGT\t", "\tGT:DS\t").replace("|", "|", 1) + ":0/1"
    ),
    "unphased GT:DS": lambda spec: edited(
        spec, lambda r: r.replace("\tGT\t", "\tGT:DS\t").replace("0|1", "0/1:0.5", 1)
    ),
    "FORMAT of one letter": lambda spec: edited(spec, replace_column(8, "G")),
    "an extra sample column": lambda spec: edited(spec, lambda r: r + "\t0|1"),
    "a missing sample column": lambda spec: edited(spec, lambda r: r.rsplit("\t", 1)[0]),
    "lowercase SNP": lambda spec: edited(spec, replace_column(3, "a")),
    "no newline at the end": lambda spec: edited(spec, lambda r: r).rstrip(b"\n"),
}


def reports(path: Path, monkeypatch: pytest.MonkeyPatch, piece_size: int) -> tuple[dict, dict]:
    chunks = functools.partial(bgzf.decompressed_chunks, size=piece_size)
    monkeypatch.setattr(validator, "decompressed_chunks", chunks)
    with_fast = validate(path).as_dict()
    monkeypatch.setattr(validator, "ordinary_records", lambda *args: None)
    line_by_line = validate(path).as_dict()
    monkeypatch.undo()
    return with_fast, line_by_line


@pytest.mark.parametrize("piece_size", [4 * 1024 * 1024, 1], ids=["one piece", "block pieces"])
@pytest.mark.parametrize("name", sorted(SPECS))
def test_same_report_for_generated_files(tmp_path, monkeypatch, name, piece_size):
    path = write_text(tmp_path / "f.vcf.gz", ("\n".join(spec_text(SPECS[name])) + "\n").encode())
    fast, slow = reports(path, monkeypatch, piece_size)
    assert fast == slow


@pytest.mark.parametrize("piece_size", [4 * 1024 * 1024, 1], ids=["one piece", "block pieces"])
@pytest.mark.parametrize("name", sorted(EDITS))
def test_same_report_for_edited_files(tmp_path, monkeypatch, name, piece_size):
    path = write_text(tmp_path / "f.vcf.gz", EDITS[name](BIG))
    fast, slow = reports(path, monkeypatch, piece_size)
    assert fast == slow


def test_ordinary_pieces_take_the_fast_path(tmp_path, monkeypatch):
    """The equality above would hold trivially if the fast path never ran."""
    taken = []
    original = pieces.ordinary_records

    def spy(*args):
        records = original(*args)
        taken.append(records is not None)
        return records

    monkeypatch.setattr(validator, "ordinary_records", spy)
    path = write_text(tmp_path / "f.vcf.gz", ("\n".join(spec_text(BIG)) + "\n").encode())
    report = validate(path)
    assert report.statistics.variants == 3000
    assert not report.errors
    assert taken
    assert all(taken)
