"""Genome build detection from ``##contig`` lengths and the ``chr`` prefix.

Chromosome lengths differ between GRCh37 (hg19) and GRCh38 (hg38) for every chromosome but the
mitochondrion, so one ``##contig=<ID=..,length=..>`` line of a nuclear chromosome tells the build.
The ``chr`` prefix is only a convention (hg38 files use it, hg19 files usually do not), so it is
reported as weak evidence and never decides alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Build = Literal["hg19", "hg38"]

GRCH37_LENGTHS: dict[str, int] = {
    "1": 249_250_621, "2": 243_199_373, "3": 198_022_430, "4": 191_154_276,
    "5": 180_915_260, "6": 171_115_067, "7": 159_138_663, "8": 146_364_022,
    "9": 141_213_431, "10": 135_534_747, "11": 135_006_516, "12": 133_851_895,
    "13": 115_169_878, "14": 107_349_540, "15": 102_531_392, "16": 90_354_753,
    "17": 81_195_210, "18": 78_077_248, "19": 59_128_983, "20": 63_025_520,
    "21": 48_129_895, "22": 51_304_566, "X": 155_270_560, "Y": 59_373_566,
}  # fmt: skip

GRCH38_LENGTHS: dict[str, int] = {
    "1": 248_956_422, "2": 242_193_529, "3": 198_295_559, "4": 190_214_555,
    "5": 181_538_259, "6": 170_805_979, "7": 159_345_973, "8": 145_138_636,
    "9": 138_394_717, "10": 133_797_422, "11": 135_086_622, "12": 133_275_309,
    "13": 114_364_328, "14": 107_043_718, "15": 101_991_189, "16": 90_338_345,
    "17": 83_257_441, "18": 80_373_285, "19": 58_617_616, "20": 64_444_167,
    "21": 46_709_983, "22": 50_818_468, "X": 156_040_895, "Y": 57_227_415,
}  # fmt: skip

LENGTHS: dict[Build, dict[str, int]] = {"hg19": GRCH37_LENGTHS, "hg38": GRCH38_LENGTHS}
ASSEMBLY_NAMES: dict[Build, str] = {"hg19": "GRCh37", "hg38": "GRCh38"}


def bare(chrom: str) -> str:
    """The chromosome name without a ``chr`` prefix (``chr20`` → ``20``, ``23`` → ``X``)."""
    name = chrom.removeprefix("chr")
    return "X" if name == "23" else name


@dataclass
class BuildDetection:
    detected: Build | None = None
    # "contig_lengths" (reliable), "chr_prefix" (a guess), or None
    detected_from: str | None = None
    evidence: list[str] = field(default_factory=list)
    conflicting: bool = False

    def as_dict(self, declared: str | None) -> dict[str, object]:
        return {
            "declared": declared,
            "detected": self.detected,
            "detected_from": self.detected_from,
            "conflicting_evidence": self.conflicting,
            "evidence": self.evidence,
        }


def detect_build(contigs: dict[str, int], chromosome: str | None) -> BuildDetection:
    """Which build ``##contig`` lengths (name → length) and the data's chromosome point to."""
    result = BuildDetection()
    matches: dict[Build, list[str]] = {"hg19": [], "hg38": []}
    for name, length in contigs.items():
        for build, table in LENGTHS.items():
            if table.get(bare(name)) == length:
                matches[build].append(f"{name} {length:,}")
    votes = {build for build, found in matches.items() if found}
    for build in sorted(votes):
        found = matches[build]
        shown = "; ".join(found[:3]) + (f" and {len(found) - 3} more" if len(found) > 3 else "")
        result.evidence.append(
            f"{len(found)} ##contig length(s) match {ASSEMBLY_NAMES[build]} ({build}): {shown}"
        )
    if len(votes) == 1:
        result.detected, result.detected_from = votes.pop(), "contig_lengths"
    elif len(votes) > 1:
        result.conflicting = True
        result.evidence.append("##contig lengths match both builds; build not decided")
    if chromosome is not None:
        prefixed = chromosome.startswith("chr")
        usual: Build = "hg38" if prefixed else "hg19"
        result.evidence.append(
            f"chromosome {chromosome!r} {'has' if prefixed else 'lacks'} the 'chr' prefix "
            f"(usual for {usual})"
        )
        if result.detected is None and not result.conflicting:
            result.detected, result.detected_from = usual, "chr_prefix"
    return result


def length_for(build: Build, chrom: str) -> int | None:
    return LENGTHS[build].get(bare(chrom))
