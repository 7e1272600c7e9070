"""Imputation statistics of one chromosome (the workflow's `stats` step).

Reads Beagle's output (before the r² filter) and counts, overall and per minor-allele-frequency
bin of Beagle's estimated ``AF``: sites, imputed sites (``IMP`` flag), genotyped sites, sites that
pass the r² filter (``DR2`` >= the threshold), and the mean ``DR2``. Standard library only; like
qc.py it is included into its CWL tool and must not contain a CWL parameter reference.
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
from pathlib import Path
from typing import Any

# Upper bounds (exclusive) of the MAF bins, with their labels.
MAF_BINS = ((0.01, "<1%"), (0.05, "1-5%"), (0.5000001, ">5%"))


def maf_bin(af: float) -> str:
    maf = min(af, 1 - af)
    return next(label for bound, label in MAF_BINS if maf < bound)


def info_fields(info: str) -> dict[str, str]:
    return {key: value for key, _, value in (item.partition("=") for item in info.split(";"))}


def summarise(path: Path, r2_filter: float) -> dict[str, Any]:
    bins = {
        label: {"sites": 0, "imputed": 0, "passing_r2_filter": 0, "dr2_sum": 0.0}
        for _, label in MAF_BINS
    }
    total = {"sites": 0, "imputed": 0, "genotyped": 0, "passing_r2_filter": 0}
    # Bytes, and only the INFO column decoded: the genotype columns (GT:DS:GP for every sample)
    # are ~95 % of the file and never read, so decoding them as text cost more than the counting.
    with gzip.open(path, "rb") as stream:
        for line in stream:
            if line.startswith(b"#"):
                continue
            info = info_fields(line.split(b"\t", 8)[7].decode())
            dr2 = float(info.get("DR2", "nan"))
            imputed = "IMP" in info
            entry = bins[maf_bin(float(info.get("AF", "0")))]
            entry["sites"] += 1
            entry["imputed"] += imputed
            entry["dr2_sum"] += dr2
            passing = dr2 >= r2_filter
            entry["passing_r2_filter"] += passing
            total["sites"] += 1
            total["imputed"] += imputed
            total["genotyped"] += not imputed
            total["passing_r2_filter"] += passing
    by_maf = [
        {
            "maf_bin": label,
            "sites": entry["sites"],
            "imputed": entry["imputed"],
            "passing_r2_filter": entry["passing_r2_filter"],
            "mean_dr2": round(entry["dr2_sum"] / entry["sites"], 4) if entry["sites"] else None,
        }
        for label, entry in bins.items()
    ]
    return {**total, "r2_filter": r2_filter, "by_maf": by_maf}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--imputed", type=Path, required=True)
    parser.add_argument("--r2-filter", type=float, required=True)
    parser.add_argument("--chromosome", required=True)
    parser.add_argument("--prefix", required=True)
    args = parser.parse_args(argv)
    stats = {"chromosome": args.chromosome, **summarise(args.imputed, args.r2_filter)}
    Path(f"{args.prefix}.{args.chromosome}.stats.json").write_text(
        json.dumps(stats, indent=2) + "\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
