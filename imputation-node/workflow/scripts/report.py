"""The run's reports (the workflow's `report` step): per-chromosome QC and statistics merged.

Writes ``<prefix>.qc_report.json`` (every chromosome's QC counts and their totals),
``<prefix>.qc_report.html`` (the same as a readable page) and ``<prefix>.imputation_stats.json``
(every chromosome's imputation statistics and their totals). Standard library only; included
into its CWL tool, so it must not contain a CWL parameter reference.
"""

from __future__ import annotations

import argparse
import html
import json
import sys
from pathlib import Path
from typing import Any

COUNTS = ("sites_in", "kept", "flipped", "swapped", "dropped_total")


def load(paths: list[Path]) -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in paths]


def qc_totals(chromosomes: list[dict[str, Any]]) -> dict[str, Any]:
    totals: dict[str, Any] = {key: sum(c[key] for c in chromosomes) for key in COUNTS}
    reasons = chromosomes[0]["dropped"].keys() if chromosomes else []
    totals["dropped"] = {r: sum(c["dropped"][r] for c in chromosomes) for r in reasons}
    totals["samples"] = max((c["samples"] for c in chromosomes), default=0)
    return totals


def stats_totals(chromosomes: list[dict[str, Any]]) -> dict[str, Any]:
    keys = ("sites", "imputed", "genotyped", "passing_r2_filter")
    totals: dict[str, Any] = {key: sum(c[key] for c in chromosomes) for key in keys}
    by_maf = []
    for index, first in enumerate(chromosomes[0]["by_maf"] if chromosomes else []):
        entries = [c["by_maf"][index] for c in chromosomes]
        sites = sum(e["sites"] for e in entries)
        dr2_sum = sum((e["mean_dr2"] or 0) * e["sites"] for e in entries)
        by_maf.append(
            {
                "maf_bin": first["maf_bin"],
                "sites": sites,
                "imputed": sum(e["imputed"] for e in entries),
                "passing_r2_filter": sum(e["passing_r2_filter"] for e in entries),
                "mean_dr2": round(dr2_sum / sites, 4) if sites else None,
            }
        )
    totals["by_maf"] = by_maf
    return totals


def table(headings: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headings)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def render_html(qc: dict[str, Any], stats: dict[str, Any]) -> str:
    chromosomes = qc["chromosomes"]
    reasons = list(qc["totals"]["dropped"])
    qc_rows = [
        [c["chromosome"], c["file"], c["samples"], c["sites_in"], c["kept"], c["flipped"],
         c["swapped"]] + [c["dropped"][r] for r in reasons]
        for c in chromosomes
    ]  # fmt: skip
    stat_rows = [
        [
            s["chromosome"],
            b["maf_bin"],
            b["sites"],
            b["imputed"],
            b["passing_r2_filter"],
            b["mean_dr2"],
        ]
        for s in stats["chromosomes"]
        for b in s["by_maf"]
    ]
    first = chromosomes[0] if chromosomes else {}
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>Imputation QC report</title>"
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;margin:1em 0}"
        "td,th{border:1px solid #999;padding:4px 8px;text-align:right}</style></head><body>"
        "<h1>Imputation QC report</h1>"
        f"<p>Panel {html.escape(str(first.get('panel', '')))} ({html.escape(str(first.get('build', '')))}), "
        f"population {html.escape(str(first.get('population', '')))}. "
        f"Sites in: {qc['totals']['sites_in']:,}; kept: {qc['totals']['kept']:,}; flipped to the "
        f"panel's strand: {qc['totals']['flipped']:,}; REF/ALT swapped: {qc['totals']['swapped']:,}; "
        f"dropped: {qc['totals']['dropped_total']:,}.</p>"
        "<h2>QC per chromosome (sites dropped by reason)</h2>"
        + table(
            ["chromosome", "file", "samples", "sites in", "kept", "flipped", "swapped", *reasons],
            qc_rows,
        )
        + f"<h2>Imputation (r² filter: DR2 &ge; {stats['r2_filter']})</h2>"
        + table(["chromosome", "MAF", "sites", "imputed", "passing filter", "mean DR2"], stat_rows)
        + "</body></html>\n"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--qc", type=Path, nargs="+", required=True)
    parser.add_argument("--stats", type=Path, nargs="+", required=True)
    parser.add_argument("--prefix", required=True)
    args = parser.parse_args(argv)
    qc_chromosomes = load(args.qc)
    stats_chromosomes = load(args.stats)
    qc = {"chromosomes": qc_chromosomes, "totals": qc_totals(qc_chromosomes)}
    r2_filter = stats_chromosomes[0]["r2_filter"] if stats_chromosomes else None
    stats = {
        "r2_filter": r2_filter,
        "chromosomes": stats_chromosomes,
        "totals": stats_totals(stats_chromosomes),
    }
    Path(f"{args.prefix}.qc_report.json").write_text(json.dumps(qc, indent=2) + "\n")
    Path(f"{args.prefix}.qc_report.html").write_text(render_html(qc, stats))
    Path(f"{args.prefix}.imputation_stats.json").write_text(json.dumps(stats, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
