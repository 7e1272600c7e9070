"""Small genotype VCFs for the sandbox's own tests and for demos, with defects on request.

`make_vcf(chrom="20", samples=25)` gives a valid, sorted, BGZF-compressed, phased file. Each
keyword of `VcfSpec` injects one defect the servers reject (plain gzip, unsorted positions,
duplicate sample ids, REF equal to ALT, a second chromosome, missing sample columns, spaces
instead of tabs, unphased genotypes). The platform's file-manager has its own generator; this one
stays internal to the sandbox.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass, replace
from typing import Literal

from sandbox.results import _rng
from sandbox.vcf.bgzf import bgzf_compress

__all__ = ["VcfSpec", "make_vcf", "vcf_text"]


@dataclass(frozen=True)
class VcfSpec:
    """What to generate. Defaults make a valid phased file with 25 samples and 40 SNPs."""

    chrom: str = "20"
    samples: int = 25
    variants: int = 40
    start: int = 60_000
    step: int = 1_000
    seed: int = 0
    compression: Literal["bgzf", "gzip", "none"] = "bgzf"
    unphased: bool = False
    haploid_samples: int = 0  # first N samples get haploid calls (males on chrX)
    missing_rate: float = 0.0  # share of genotypes written as `.|.`
    mixed_rate: float = 0.0  # share of genotypes half missing, like `.|1`
    unsorted: bool = False
    duplicate_sample: bool = False
    ref_equals_alt: bool = False
    second_chrom: str | None = None
    no_sample_columns: bool = False
    space_delimited: bool = False
    sample_prefix: str = "S"


def _genotype(spec: VcfSpec, rng_value: float, sample: int, row: int) -> str:
    rng = _rng(spec.seed, spec.chrom, row, sample)
    if rng.random() < spec.missing_rate:
        return "." if sample < spec.haploid_samples else ".|."
    alleles = ["1" if rng.random() < rng_value else "0" for _ in range(2)]
    if rng.random() < spec.mixed_rate:
        alleles[0] = "."
    if sample < spec.haploid_samples:
        return alleles[0]
    return ("/" if spec.unphased else "|").join(alleles)


def vcf_text(spec: VcfSpec) -> str:
    """The uncompressed VCF text for `spec`."""
    names = [f"{spec.sample_prefix}{i + 1}" for i in range(spec.samples)]
    if spec.duplicate_sample and len(names) > 1:
        names[-1] = names[0]
    lines = [
        "##fileformat=VCFv4.2",
        f"##contig=<ID={spec.chrom}>",
        '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">',
        "#"
        + "\t".join(
            ["CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO", "FORMAT", *names]
        ),
    ]
    rows = []
    for row in range(spec.variants):
        rng = _rng(spec.seed, spec.chrom, row)
        ref = "ACGT"[rng.randrange(4)]
        alt = (
            ref
            if spec.ref_equals_alt and row == spec.variants // 2
            else rng.choice([b for b in "ACGT" if b != ref])
        )
        chrom = spec.second_chrom if spec.second_chrom and row >= spec.variants // 2 else spec.chrom
        frequency = rng.uniform(0.1, 0.5)
        fields = [
            chrom,
            str(spec.start + row * spec.step),
            f"rs{1000 + row}",
            ref,
            alt,
            ".",
            "PASS",
            ".",
            "GT",
        ]
        if not spec.no_sample_columns:
            fields += [_genotype(spec, frequency, s, row) for s in range(spec.samples)]
        rows.append(("\t" if not spec.space_delimited else " ").join(fields))
    if spec.unsorted and len(rows) > 2:
        rows[1], rows[2] = rows[2], rows[1]
    return "\n".join(lines + rows) + "\n"


def make_vcf(spec: VcfSpec | None = None, **changes: object) -> bytes:
    """The file content for `spec` (or the default spec with `changes`), compressed as asked."""
    final = replace(spec or VcfSpec(), **changes)  # type: ignore[arg-type]
    data = vcf_text(final).encode()
    if final.compression == "bgzf":
        return bgzf_compress(data)
    if final.compression == "gzip":
        return gzip.compress(data)
    return data
