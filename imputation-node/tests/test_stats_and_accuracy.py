"""The statistics and report steps, and the accuracy measure, on small hand-made VCFs."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from imputation_node.accuracy import evaluate

from .conftest import load_script

stats = load_script("stats")
report = load_script("report")

COLUMNS = "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tA\tB\n"


def write(path: Path, lines: list[str], header: str = COLUMNS) -> Path:
    with gzip.open(path, "wt") as out:
        out.write("##fileformat=VCFv4.2\n" + header + "".join(lines))
    return path


def imputed_line(
    pos: int, dr2: float, af: float, imputed: bool, ds: tuple[float, float], alt: str = "G"
) -> str:
    info = f"DR2={dr2};AF={af}" + (";IMP" if imputed else "")
    samples = [f"0|0:{d}:0,0,0" for d in ds]
    return (
        "\t".join(["chr20", str(pos), ".", "A", alt, ".", "PASS", info, "GT:DS:GP", *samples])
        + "\n"
    )


def test_stats_count_sites_by_maf_bin_and_r2_filter(tmp_path):
    path = write(
        tmp_path / "i.vcf.gz",
        [
            imputed_line(1, 0.10, 0.005, True, (0, 0)),
            imputed_line(2, 0.50, 0.995, True, (0, 0)),  # MAF 0.5 %: the rare bin too
            imputed_line(3, 0.80, 0.03, True, (0, 0)),
            imputed_line(4, 0.95, 0.30, False, (0, 0)),
            imputed_line(5, 0.99, 0.60, True, (0, 0)),
        ],
    )
    result = stats.summarise(path, 0.3)
    assert (
        result["sites"],
        result["imputed"],
        result["genotyped"],
        result["passing_r2_filter"],
    ) == (5, 4, 1, 4)
    assert result["by_maf"] == [
        {"maf_bin": "<1%", "sites": 2, "imputed": 2, "passing_r2_filter": 1, "mean_dr2": 0.3},
        {"maf_bin": "1-5%", "sites": 1, "imputed": 1, "passing_r2_filter": 1, "mean_dr2": 0.8},
        {"maf_bin": ">5%", "sites": 2, "imputed": 1, "passing_r2_filter": 2, "mean_dr2": 0.97},
    ]


def test_report_merges_chromosomes_and_escapes_names(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    dropped = {"duplicate": 2, "not_in_panel": 1}
    qc_files, stat_files = [], []
    for chrom, name in (("chr20", "<b>x</b>.vcf.gz"), ("chr21", "y.vcf.gz")):
        qc = {"file": name, "chromosome": chrom, "panel": "p", "build": "hg38", "population": "all",
              "samples": 3, "sites_in": 10, "kept": 7, "flipped": 1, "swapped": 0,
              "dropped": dropped, "dropped_total": 3}  # fmt: skip
        by_maf = [
            {
                "maf_bin": ">5%",
                "sites": 4,
                "imputed": 3,
                "passing_r2_filter": 4,
                "mean_dr2": 0.5 if chrom == "chr20" else 1.0,
            }
        ]
        stat = {
            "chromosome": chrom,
            "sites": 4,
            "imputed": 3,
            "genotyped": 1,
            "passing_r2_filter": 4,
            "r2_filter": 0.3,
            "by_maf": by_maf,
        }
        qc_files.append(tmp_path / f"{chrom}.qc.json")
        qc_files[-1].write_text(json.dumps(qc))
        stat_files.append(tmp_path / f"{chrom}.stats.json")
        stat_files[-1].write_text(json.dumps(stat))
    args = ["--qc", *map(str, qc_files), "--stats", *map(str, stat_files), "--prefix", "run"]
    assert report.main(args) == 0
    merged = json.loads((tmp_path / "run.qc_report.json").read_text())["totals"]
    assert merged == {"sites_in": 20, "kept": 14, "flipped": 2, "swapped": 0, "dropped_total": 6,
                      "dropped": {"duplicate": 4, "not_in_panel": 2}, "samples": 3}  # fmt: skip
    totals = json.loads((tmp_path / "run.imputation_stats.json").read_text())["totals"]
    assert totals["sites"] == 8
    assert totals["by_maf"] == [
        {"maf_bin": ">5%", "sites": 8, "imputed": 6, "passing_r2_filter": 8, "mean_dr2": 0.75}
    ]
    page = (tmp_path / "run.qc_report.html").read_text()
    assert "&lt;b&gt;x&lt;/b&gt;.vcf.gz" in page
    assert "<b>x</b>" not in page


def test_accuracy_is_the_squared_correlation_over_imputed_sites_per_panel_maf_bin(tmp_path):
    truth_lines = [
        "chr20\t1\t.\tA\tG\t.\tPASS\t.\tGT\t0|1\t1|1\n",
        "chr20\t2\t.\tA\tG\t.\tPASS\t.\tGT\t0|0\t0|1\n",
        "chr20\t3\t.\tA\tG\t.\tPASS\t.\tGT\t0|1\t0|0\n",  # typed on the array
        "chr20\t4\t.\tA\tC\t.\tPASS\t.\tGT\t0|0\t0|1\n",
    ]
    truth = write(tmp_path / "truth.vcf.gz", truth_lines)
    sites = write(
        tmp_path / "sites.vcf.gz",
        [
            f"chr20\t{p}\t.\tA\t{a}\t.\tPASS\tAF={af}\n"
            for p, a, af in ((1, "G", 0.2), (2, "G", 0.3), (3, "G", 0.3), (4, "C", 0.02))
        ],
        header="#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n",
    )
    imputed = write(
        tmp_path / "imputed.vcf.gz",
        [
            imputed_line(1, 0.9, 0.2, True, (1.0, 2.0)),
            imputed_line(2, 0.7, 0.3, True, (0.0, 0.5)),
            imputed_line(3, 1.0, 0.3, False, (1.0, 0.0)),
            imputed_line(4, 0.4, 0.02, True, (0.2, 0.2), alt="C"),  # says nothing: no variance
        ],
    )
    result = evaluate(imputed, truth, sites)
    assert result["samples"] == 2
    assert result["imputed_sites_evaluated"] == 3
    bins = {b["maf_bin"]: b for b in result["by_maf"]}
    # Pooled pairs (dosage, truth) of sites 1 and 2: (1,1) (2,2) (0,0) (0.5,1).
    dosage, true = [1.0, 2.0, 0.0, 0.5], [1, 2, 0, 1]
    mx, my = sum(dosage) / 4, sum(true) / 4
    cov = sum((x - mx) * (y - my) for x, y in zip(dosage, true, strict=True))
    r2 = cov**2 / (sum((x - mx) ** 2 for x in dosage) * sum((y - my) ** 2 for y in true))
    assert bins[">5%"]["r2"] == pytest.approx(r2, abs=1e-4)
    assert bins[">5%"]["sites"] == 2
    assert bins[">5%"]["mean_dr2"] == 0.8
    assert bins["1-5%"] == {"maf_bin": "1-5%", "sites": 1, "r2": None, "mean_dr2": 0.4}
    assert bins["<1%"] == {"maf_bin": "<1%", "sites": 0, "r2": None, "mean_dr2": None}
