"""Imputation accuracy against the held-out truth, by minor-allele-frequency bin.

The standard measure: for the sites the target did not have (Beagle's ``IMP`` flag), the squared
Pearson correlation between the imputed alternate-allele dosage (``DS``) and the true allele count
(0, 1, 2) of every held-out person, pooled over all sites of a MAF bin ("aggregate r²"). Bins use
the reference panel's allele frequency (its sites file), so they do not depend on the imputation
being judged. The mean ``DR2`` (Beagle's own estimate of that r²) is reported beside it.

Standard library only, so the platform's tests can import it without the node's environment.
"""

from __future__ import annotations

import gzip
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MAF_BINS = ((0.01, "<1%"), (0.05, "1-5%"), (0.5000001, ">5%"))


def maf_bin(af: float) -> str:
    maf = min(af, 1 - af)
    return next(label for bound, label in MAF_BINS if maf < bound)


def _records(path: Path) -> Iterator[tuple[list[str], list[str]]]:
    """(header columns, fields) of each data line."""
    columns: list[str] = []
    with gzip.open(path, "rt") as stream:
        for line in stream:
            if line.startswith("##"):
                continue
            fields = line.rstrip("\n").split("\t")
            if line.startswith("#"):
                columns = fields
                continue
            yield columns, fields


def _info(field_text: str) -> dict[str, str]:
    return {key: value for key, _, value in (i.partition("=") for i in field_text.split(";"))}


def panel_frequencies(sites: Path) -> dict[tuple[int, str, str], float]:
    return {(int(f[1]), f[3], f[4]): float(_info(f[7])["AF"]) for _, f in _records(sites)}


def truth_counts(truth: Path) -> tuple[list[str], dict[tuple[int, str, str], list[int]]]:
    samples: list[str] = []
    counts: dict[tuple[int, str, str], list[int]] = {}
    for columns, f in _records(truth):
        samples = columns[9:]
        counts[(int(f[1]), f[3], f[4])] = [
            int(gt[0]) + int(gt[2]) for gt in (s.split(":", 1)[0] for s in f[9:])
        ]
    return samples, counts


@dataclass
class _Bin:
    """Running sums for a pooled Pearson correlation, and DR2."""

    sites: int = 0
    n: int = 0
    sx: float = 0.0
    sy: float = 0.0
    sxx: float = 0.0
    syy: float = 0.0
    sxy: float = 0.0
    dr2_sum: float = 0.0

    def add(self, dosages: list[float], truth: list[int], dr2: float) -> None:
        self.sites += 1
        self.dr2_sum += dr2
        for x, y in zip(dosages, truth, strict=True):
            self.n += 1
            self.sx += x
            self.sy += y
            self.sxx += x * x
            self.syy += y * y
            self.sxy += x * y

    def r2(self) -> float | None:
        if self.n == 0:
            return None
        cov = self.sxy - self.sx * self.sy / self.n
        vx = self.sxx - self.sx * self.sx / self.n
        vy = self.syy - self.sy * self.sy / self.n
        if vx <= 0 or vy <= 0:
            return None
        return cov * cov / (vx * vy)


def evaluate(imputed: Path, truth: Path, panel_sites: Path) -> dict[str, Any]:
    """Aggregate r² and mean DR2 per MAF bin over the imputed (masked) sites."""
    samples, true_counts = truth_counts(truth)
    frequencies = panel_frequencies(panel_sites)
    bins = {label: _Bin() for _, label in MAF_BINS}
    seen = 0
    for columns, f in _records(imputed):
        info = _info(f[7])
        key = (int(f[1]), f[3], f[4])
        if "IMP" not in info or key not in true_counts or key not in frequencies:
            continue
        if columns[9:] != samples:
            raise ValueError("the imputed VCF's samples are not the truth's (same order expected)")
        ds_index = f[8].split(":").index("DS")
        dosages = [float(s.split(":")[ds_index]) for s in f[9:]]
        bins[maf_bin(frequencies[key])].add(dosages, true_counts[key], float(info["DR2"]))
        seen += 1
    masked = sum(1 for key in true_counts if key in frequencies)
    return {
        "samples": len(samples),
        "imputed_sites_evaluated": seen,
        "truth_sites": masked,
        "by_maf": [
            {
                "maf_bin": label,
                "sites": b.sites,
                "r2": _round(b.r2()),
                "mean_dr2": _round(b.dr2_sum / b.sites if b.sites else None),
            }
            for label, b in bins.items()
        ],
    }


def _round(value: float | None) -> float | None:
    return None if value is None or math.isnan(value) else round(value, 4)
