"""Plausible imputation results derived from the submitted genotypes.

For each chromosome the simulator returns what Minimac4 + MIS2 return: a zip `chr_<n>.zip`,
encrypted with the job password, holding `chr<n>.dose.vcf.gz` (BGZF, `GT:DS:GP`, `AF/MAF/R2` and
`TYPED`/`IMPUTED` INFO flags) and `chr<n>.info.gz` (one line per variant with its `Rsq`). Typed
sites carry the input genotypes (phased); one imputed site is added between neighbouring typed
sites, its dosages interpolated from the neighbours' haplotypes with a little deterministic noise,
so the output is stable for a given input and follows the study's samples and positions.
"""

from __future__ import annotations

import gzip
import hashlib
import random
import secrets
import string
from collections.abc import Sequence
from dataclasses import dataclass

from sandbox.archive import encrypted_zip
from sandbox.vcf.bgzf import bgzf_compress
from sandbox.vcf.validation import Variant

__all__ = [
    "ImputedSite",
    "chromosome_zip",
    "generate_password",
    "human_size",
    "impute",
    "qc_report",
]

_BASES = "ACGT"


@dataclass(frozen=True)
class ImputedSite:
    """One output variant: per-sample haplotype dosages and its estimated R2."""

    chrom: str
    pos: int
    ref: str
    alt: str
    typed: bool
    r2: float
    haplotypes: tuple[tuple[float, ...], ...]  # per sample: one value (haploid) or two

    @property
    def af(self) -> float:
        values = [h for sample in self.haplotypes for h in sample]
        return sum(values) / len(values) if values else 0.0


def generate_password(length: int = 12) -> str:
    """A random zip password, as IS2's PasswordCreator makes when the user sends none."""
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(length))


def _rng(*parts: object) -> random.Random:
    """A generator seeded by the site, so the same input always gives the same output."""
    digest = hashlib.sha256(":".join(map(str, parts)).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))  # noqa: S311 - not security relevant


def _haplotypes(genotype: str) -> tuple[float, ...]:
    """Allele values of a GT (`.` counts as the reference, as imputation fills missing calls)."""
    alleles = genotype.replace("|", "/").split("/")
    return tuple(1.0 if a not in ("0", ".") else 0.0 for a in alleles)


def _typed_site(variant: Variant) -> ImputedSite:
    rng = _rng(variant.chrom, variant.pos, "typed")
    haplotypes = tuple(_haplotypes(gt) for gt in variant.genotypes)
    return ImputedSite(
        variant.chrom,
        variant.pos,
        variant.ref,
        variant.alt,
        True,
        round(rng.uniform(0.95, 1.0), 5),
        haplotypes,
    )


def _between(left: Variant, right: Variant) -> ImputedSite:
    """An untyped site halfway between two typed ones, dosages blended from both neighbours."""
    pos = (left.pos + right.pos) // 2
    rng = _rng(left.chrom, pos, "imputed")
    ref = _BASES[rng.randrange(4)]
    alt = rng.choice([b for b in _BASES if b != ref])
    samples = []
    for gt_left, gt_right in zip(left.genotypes, right.genotypes, strict=True):
        hl, hr = _haplotypes(gt_left), _haplotypes(gt_right)
        blended = []
        for a, b in zip(hl, hr, strict=False):
            value = (a + b) / 2 + rng.uniform(-0.05, 0.05)
            blended.append(round(min(1.0, max(0.0, value)), 3))
        samples.append(tuple(blended))
    return ImputedSite(
        left.chrom, pos, ref, alt, False, round(rng.uniform(0.2, 1.0), 5), tuple(samples)
    )


def impute(variants: Sequence[Variant], r2_filter: float) -> list[ImputedSite]:
    """Typed sites plus one imputed site per gap; imputed sites under `r2_filter` are dropped."""
    sites: list[ImputedSite] = []
    for index, variant in enumerate(variants):
        sites.append(_typed_site(variant))
        if index + 1 < len(variants) and variants[index + 1].pos - variant.pos > 1:
            imputed = _between(variant, variants[index + 1])
            if imputed.r2 >= r2_filter:
                sites.append(imputed)
    return sites


def _format_sample(haplotypes: tuple[float, ...]) -> str:
    gt = "|".join("1" if h >= 0.5 else "0" for h in haplotypes)
    ds = sum(haplotypes)
    if len(haplotypes) == 1:
        gp = f"{1 - haplotypes[0]:.3f},{haplotypes[0]:.3f}"
    else:
        a, b = haplotypes[0], haplotypes[1]
        gp = f"{(1 - a) * (1 - b):.3f},{a * (1 - b) + b * (1 - a):.3f},{a * b:.3f}"
    return f"{gt}:{ds:.3f}:{gp}"


def _dose_vcf(samples: Sequence[str], sites: Sequence[ImputedSite], panel: str) -> bytes:
    chrom = sites[0].chrom if sites else "."
    header = [
        "##fileformat=VCFv4.1",
        "##source=Minimac4.v1.0.2 (FedImpute sandbox)",
        "##phasing=full",
        f"##contig=<ID={chrom}>",
        f"##reference={panel}",
        '##INFO=<ID=AF,Number=1,Type=Float,Description="Estimated Alternate Allele Frequency">',
        '##INFO=<ID=MAF,Number=1,Type=Float,Description="Estimated Minor Allele Frequency">',
        '##INFO=<ID=R2,Number=1,Type=Float,Description="Estimated Imputation Accuracy (R-square)">',
        '##INFO=<ID=IMPUTED,Number=0,Type=Flag,Description="Marker was imputed but NOT genotyped">',
        '##INFO=<ID=TYPED,Number=0,Type=Flag,Description="Marker was genotyped AND imputed">',
        '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">',
        '##FORMAT=<ID=DS,Number=A,Type=Float,Description="Estimated Alternate Allele Dosage : [P(0/1)+2*P(1/1)]">',
        '##FORMAT=<ID=GP,Number=G,Type=Float,Description="Estimated Posterior Probabilities '
        'for Genotypes 0/0, 0/1 and 1/1">',
        "#"
        + "\t".join(
            ["CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO", "FORMAT", *samples]
        ),
    ]
    lines = header[:]
    for site in sites:
        af = site.af
        flag = "TYPED" if site.typed else "IMPUTED"
        info = f"AF={af:.5f};MAF={min(af, 1 - af):.5f};R2={site.r2:.5f};{flag}"
        fields = [
            site.chrom,
            str(site.pos),
            f"{site.chrom}:{site.pos}:{site.ref}:{site.alt}",
            site.ref,
            site.alt,
            ".",
            "PASS",
            info,
            "GT:DS:GP",
        ]
        lines.append("\t".join(fields + [_format_sample(h) for h in site.haplotypes]))
    return bgzf_compress(("\n".join(lines) + "\n").encode())


def _info_file(sites: Sequence[ImputedSite]) -> bytes:
    lines = [
        "SNP\tREF(0)\tALT(1)\tALT_Frq\tMAF\tAvgCall\tRsq\tGenotyped\tLooRsq\tEmpR\tEmpRsq\tDose0\tDose1"
    ]
    for site in sites:
        af = site.af
        typed = "Genotyped" if site.typed else "Imputed"
        loo = f"{site.r2:.5f}" if site.typed else "-"
        lines.append(
            f"{site.chrom}:{site.pos}:{site.ref}:{site.alt}\t{site.ref}\t{site.alt}\t{af:.5f}\t{min(af, 1 - af):.5f}"
            f"\t{max(af, 1 - af):.5f}\t{site.r2:.5f}\t{typed}\t{loo}\t-\t-\t-\t-"
        )
    return gzip.compress(("\n".join(lines) + "\n").encode(), mtime=0)


def chromosome_zip(
    chromosome: str,
    samples: Sequence[str],
    variants: Sequence[Variant],
    *,
    password: str,
    panel: str,
    r2_filter: float = 0.0,
    aes: bool = False,
) -> tuple[str, bytes]:
    """The `chr_<n>.zip` of one chromosome: (file name, encrypted zip bytes)."""
    sites = impute(variants, r2_filter)
    entries = {
        f"chr{chromosome}.dose.vcf.gz": _dose_vcf(samples, sites, panel),
        f"chr{chromosome}.info.gz": _info_file(sites),
    }
    return f"chr_{chromosome}.zip", encrypted_zip(entries, password, aes=aes)


def qc_report(validation_summary: str, qc_summary: str) -> bytes:
    """`qc_report.txt`: the validation and QC statistics the job printed."""
    return f"Input Validation\n\n{validation_summary}\n\nQuality Control\n\n{qc_summary}\n".encode()


def human_size(size: int) -> str:
    """Byte counts as Cloudgene shows them (commons-io `byteCountToDisplaySize`: floored units)."""
    for unit, factor in (("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if size >= factor:
            return f"{size // factor} {unit}"
    return f"{size} bytes"
