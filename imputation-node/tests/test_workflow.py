"""The workflow on its own: cwltool runs it from its files, as any CWL engine of a node would."""

from __future__ import annotations

import gzip
import json
import subprocess

from .conftest import NODE_BIN, NODE_ROOT, Node


def test_cwltool_runs_the_workflow_and_the_r2_filter_keeps_only_good_sites(node: Node, tmp_path):
    job = {
        "target_vcfs": [{"class": "File", "path": str(node.heldout / "target.chr20.vcf.gz")}],
        "panel": {"class": "Directory", "path": str(node.data_dir / "panels" / "sim-ooa-chr20")},
        "build": "hg38",
        "population": "eur",
        "r2_filter": 0.8,
        "output_prefix": "direct",
        "threads": 2,
    }
    (tmp_path / "job.json").write_text(json.dumps(job))
    result = subprocess.run(
        [str(NODE_BIN / "cwltool"), "--no-container", "--outdir", str(tmp_path / "out"),
         str(NODE_ROOT / "workflow" / "imputation.cwl"), str(tmp_path / "job.json")],
        capture_output=True, text=True, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    outputs = json.loads(result.stdout)
    assert set(outputs) == {
        "imputed_vcfs",
        "qc_report_json",
        "qc_report_html",
        "imputation_stats",
        "beagle_logs",
    }
    [vcf] = outputs["imputed_vcfs"]
    assert vcf["basename"] == "direct.chr20.dose.vcf.gz"
    assert [s["basename"] for s in vcf["secondaryFiles"]] == ["direct.chr20.dose.vcf.gz.tbi"]
    with gzip.open(vcf["path"], "rt") as stream:
        dr2 = [
            float(next(i for i in line.split("\t")[7].split(";") if i.startswith("DR2="))[4:])
            for line in stream
            if not line.startswith("#")
        ]
    stats = json.loads((tmp_path / "out" / "direct.imputation_stats.json").read_text())
    assert stats["r2_filter"] == 0.8
    assert len(dr2) == stats["totals"]["passing_r2_filter"] < stats["totals"]["sites"]
    assert min(dr2) >= 0.8
    qc = json.loads((tmp_path / "out" / "direct.qc_report.json").read_text())["chromosomes"][0]
    assert qc["population"] == "eur"
    assert qc["kept"] == stats["totals"]["genotyped"]
    beagle_log = (tmp_path / "out" / "direct.chr20.beagle.log").read_text()
    assert "(version 5.4)" in beagle_log
    assert "gp=true" in beagle_log
