"""The validation messages. Those marked (§7) are quoted exactly from the imputation servers'
validator (external-protocols.md §7) so users see the words Michigan/TOPMed would show them."""

from __future__ import annotations

MALFORMED = "The provided VCF file is malformed."  # (§7) followed by "\nError: <tabix output>"
NOT_TAB_DELIMITED = "The provided VCF file is not tab-delimited"  # (§7)
MORE_THAN_ONE_CHROMOSOME = (  # (§7)
    "The provided VCF file contains more than one chromosome. "
    "Please split your input VCF file by chromosome"
)
NO_VCF_GZ = "::error:: No vcf.gz input files detected."  # (§7)
AT_LEAST_20_SAMPLES = "At least {min} samples must be uploaded."  # (§7, job level: a warning here)


def malformed(error: str) -> str:
    """(§7) rule 1: tabix (or our equivalent check) refused the file."""
    return f"{MALFORMED}\nError: {error}"


def invalid_chromosome(chrom: str) -> str:
    return f"Invalid chromosome found: {chrom}"  # (§7)


def ref_equals_alt(variant_id: str, ref: str, alt: str) -> str:
    # (§7) two spaces before "(<ALT>)", as in the servers' source
    return (
        f"The provided VCF file is malformed at variation {variant_id}: reference allele "
        f"({ref}) and alternate allele  ({alt}) are the same."
    )


def duplicate_sample(sample: str) -> str:
    return f"Two individuals or more have the following ID: {sample}"  # (§7)


def wrong_build_encoding(raw: str, build: str) -> str:
    """(§7) rule 8: the chr prefix does not match the build."""
    bare = raw.removeprefix("chr")
    expected = bare if build == "hg19" else f"chr{bare}"
    return (
        f"Your upload data contains chromosome '{raw}'. This is not a valid {build} encoding. "
        f"Please ensure that your input data is build {build} and chromosome is encoded as "
        f"'{expected}'."
    )


# Our own messages (the servers have none, or only a stack trace, for these).
EMPTY_FILE = "The uploaded file is empty."
NOT_BGZF = (
    "not a BGZF (bgzip) file; compress the VCF with `bgzip file.vcf` (htslib), not with gzip or zip"
)
PLAIN_GZIP = (
    "the file is compressed with plain gzip, not bgzip (BGZF); recompress it with "
    "`zcat file.vcf.gz | bgzip > fixed.vcf.gz`"
)
TRUNCATED = "EOF marker is absent. The input is probably truncated"  # htslib's words
BAD_BGZF_BLOCK = "a BGZF block is corrupt (the file is damaged or truncated)"
NOT_VCF = "the first line must be ##fileformat=VCF...; this is not a VCF file"
NO_CHROM_LINE = "the header has no #CHROM line (the line naming the columns and samples)"
NO_SAMPLES = "the #CHROM line names no sample: at least one sample column is required"
HEADER_TOO_LARGE = "the header is larger than {limit} bytes"
LINE_TOO_LONG = "line {line} is longer than {limit} bytes"
TOO_FEW_COLUMNS = (
    "line {line} has {found} columns; a VCF record needs at least 10 "
    "(8 fixed columns, FORMAT and one sample)"
)
SAMPLE_COUNT_MISMATCH = "line {line} has {found} sample columns but the header names {expected}"
UNSORTED = "unsorted positions on sequence #1: {previous} followed by {current} (line {line})"
BAD_POSITION = "line {line}: POS {pos!r} is not a positive integer"
DECOMPRESSED_TOO_LARGE = (
    "the file decompresses to more than {limit} bytes (a compression bomb?); validation stopped"
)
TIMED_OUT = "validation took longer than {seconds:.0f} seconds and was stopped"
OUT_OF_MEMORY = "validation needed more memory than allowed and was stopped"
NO_VARIANTS = "the file contains no variant"
