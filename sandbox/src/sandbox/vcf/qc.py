"""Quality control of validated VCFs, after imputationserver-utils `QualityControlCommand`.

Without a reference panel on disk the simulator cannot count allele mismatches or strand flips,
so it applies the rules that the input alone decides (spec §7 "QC rules"): variants that are not
A/C/G/T SNPs, duplicated, monomorphic or called in fewer than 90 % of samples are dropped; a 20 Mb
chunk is excluded when it keeps fewer than `min_snps` variants or a sample's call rate in it is
below 0.5; chrX non-PAR data with too many mixed genotypes or with samples that are both haploid
and diploid stops the job; and a build without a liftOver chain stops it too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sandbox.vcf.validation import DEFAULT_CHUNK_SIZE, ValidationError, Variant, VcfFile

__all__ = ["QcResult", "QcSettings", "run_qc"]

_ACGT = frozenset("ACGT")
_LIFTOVER_CHAINS = frozenset({("hg19", "hg38"), ("hg38", "hg19")})
# Pseudo-autosomal regions (1-based, inclusive) per build: outside them chrX is haploid in males.
_PAR = {
    "hg19": ((60_001, 2_699_520), (154_931_044, 155_260_560)),
    "hg38": ((10_001, 2_781_479), (155_701_383, 156_030_895)),
}


@dataclass(frozen=True)
class QcSettings:
    """Thresholds from ISU `RefPanel` defaults; panels may override `min_snps` (`qcFilter`)."""

    min_snps: int = 3
    sample_call_rate: float = 0.5
    snp_call_rate: float = 0.9
    mixed_genotypes_chrx: float = 0.1
    chunk_size: int = DEFAULT_CHUNK_SIZE


@dataclass(frozen=True)
class QcResult:
    """Variants kept per file (only those in chunks that passed) and the QC summary text."""

    kept: dict[str, tuple[Variant, ...]]
    summary: str
    excluded_chunks: int


@dataclass
class _Counts:
    invalid_alleles: int = 0
    duplicates: int = 0
    non_snps: int = 0
    monomorphic: int = 0
    low_call_rate: int = 0
    alt_over_half: int = 0
    remaining: int = 0


def _alleles(genotype: str) -> list[str]:
    return genotype.replace("|", "/").split("/")


def _call_rate(variant: Variant) -> float:
    called = sum(1 for gt in variant.genotypes if "." not in _alleles(gt))
    return called / len(variant.genotypes) if variant.genotypes else 0.0


def _keep_variant(variant: Variant, seen: set[int], counts: _Counts, settings: QcSettings) -> bool:
    """Apply the per-variant filters in the order MIS reports them; count why a site is dropped."""
    if len(variant.ref) != 1 or len(variant.alt) != 1:
        counts.non_snps += 1
        return False
    if variant.ref not in _ACGT or variant.alt not in _ACGT:
        counts.invalid_alleles += 1
        return False
    if variant.pos in seen:
        counts.duplicates += 1
        return False
    seen.add(variant.pos)
    alleles = [a for gt in variant.genotypes for a in _alleles(gt) if a != "."]
    if len(set(alleles)) < 2:
        counts.monomorphic += 1
        return False
    if _call_rate(variant) < settings.snp_call_rate:
        counts.low_call_rate += 1
        return False
    if alleles.count("1") > len(alleles) / 2:
        counts.alt_over_half += 1
    counts.remaining += 1
    return True


def _chunk(position: int, chunk_size: int) -> int:
    return (position - 1) // chunk_size


def _chunk_passes(variants: Sequence[Variant], settings: QcSettings) -> bool:
    if len(variants) < settings.min_snps:
        return False
    for sample in range(len(variants[0].genotypes)):
        called = sum(1 for v in variants if "." not in _alleles(v.genotypes[sample]))
        if called / len(variants) < settings.sample_call_rate:
            return False
    return True


def _check_chrx(vcf: VcfFile, build: str, settings: QcSettings) -> None:
    """Stop on chrX non-PAR data the server cannot impute (mixed or ambiguous genotypes)."""
    if vcf.chromosome not in ("X", "23"):
        return
    (_, par1_end), (par2_start, _) = _PAR.get(build, _PAR["hg19"])
    non_par = [v for v in vcf.variants if par1_end < v.pos < par2_start]
    genotypes = [gt for v in non_par for gt in v.genotypes]
    mixed = sum(1 for gt in genotypes if "." in _alleles(gt) and set(_alleles(gt)) != {"."})
    if genotypes and mixed / len(genotypes) > settings.mixed_genotypes_chrx:
        raise ValidationError(
            "Error: Chromosome X nonPAR region includes > 10 % mixed genotypes. "
            "Imputation cannot be started!"
        )
    for sample in range(len(vcf.samples)):
        ploidies = {len(_alleles(v.genotypes[sample])) for v in non_par}
        if len(ploidies) > 1:
            raise ValidationError(
                "Error: ChrX nonPAR region includes ambiguous samples (haploid and diploid "
                "positions). Imputation cannot be started! See chrX-info.txt"
            )


def _summary(counts: _Counts, kept_chunks: int, excluded_chunks: int) -> str:
    excluded = (
        counts.invalid_alleles
        + counts.duplicates
        + counts.non_snps
        + counts.monomorphic
        + counts.low_call_rate
    )
    lines = [
        "Calculating QC Statistics",
        "",
        "Statistics:",
        f"Alternative allele frequency > 0.5 sites: {counts.alt_over_half}",
        f"Match: {counts.remaining}",
        "Allele switch: 0",
        "Strand flip: 0",
        "Strand flip and allele switch: 0",
        "",
        "Filtered sites:",
        f"Invalid alleles: {counts.invalid_alleles}",
        f"Duplicated sites: {counts.duplicates}",
        f"NonSNP sites: {counts.non_snps}",
        f"Monomorphic sites: {counts.monomorphic}",
        "Allele mismatch: 0",
        f"SNPs call rate < 90%: {counts.low_call_rate}",
        "",
        f"Excluded sites in total: {excluded}",
        f"Remaining sites in total: {counts.remaining}",
        f"Remaining chunk(s): {kept_chunks}",
    ]
    if excluded_chunks:
        lines.append(f"Excluded chunk(s): {excluded_chunks} (see chunks-excluded.txt)")
    return "\n".join(lines)


def run_qc(
    files: Sequence[VcfFile], build: str, panel_build: str, settings: QcSettings
) -> QcResult:
    """QC every file; raise `ValidationError` with the server's text when the job cannot go on."""
    if build != panel_build and (build, panel_build) not in _LIFTOVER_CHAINS:
        raise ValidationError(f"Currently we do not support liftOver from {build} to {panel_build}")
    counts = _Counts()
    kept: dict[str, tuple[Variant, ...]] = {}
    kept_chunks = excluded_chunks = 0
    for vcf in files:
        _check_chrx(vcf, build, settings)
        seen: set[int] = set()
        chunks: dict[int, list[Variant]] = {}
        for variant in vcf.variants:
            if _keep_variant(variant, seen, counts, settings):
                chunks.setdefault(_chunk(variant.pos, settings.chunk_size), []).append(variant)
        passing = [vs for _, vs in sorted(chunks.items()) if _chunk_passes(vs, settings)]
        all_chunks = {_chunk(v.pos, settings.chunk_size) for v in vcf.variants}
        excluded_chunks += len(all_chunks) - len(passing)
        kept_chunks += len(passing)
        if passing:
            kept[vcf.name] = tuple(v for vs in passing for v in vs)
    if not kept:
        raise ValidationError("Error: No chunks passed the QC step. Imputation cannot be started!")
    return QcResult(
        kept=kept,
        summary=_summary(counts, kept_chunks, excluded_chunks),
        excluded_chunks=excluded_chunks,
    )
