"""The node as a WES client sees it: service-info, the workflow it serves, a real imputation run."""

from __future__ import annotations

import gzip
import json
import re
import time
from pathlib import Path

import httpx

from imputation_node.accuracy import evaluate

from .conftest import WES, Node
from .targets import Target


def test_service_info_advertises_the_workflow_and_the_panels(node: Node):
    info = httpx.get(f"{node.url}{WES}/service-info").json()
    assert info["type"] == {"group": "org.ga4gh", "artifact": "wes", "version": "1.1.0"}
    assert info["workflow_type_versions"] == {"CWL": {"workflow_type_version": ["v1.2"]}}
    assert list(info["workflow_engine_versions"]) == ["cwltool"]
    assert json.loads(info["tags"]["fedimpute.reference_panels"]) == [
        {
            "id": "sim-ooa-chr20",
            "name": "Simulated out-of-Africa, chr20 (CI size)",
            "version": "1.0.0",
            "build": "hg38",
            "populations": ["afr", "eur", "eas", "all"],
            "samples": 300,
            "chromosomes": ["20"],
            "location": node.panel_location,
        }
    ]
    [workflow] = json.loads(info["tags"]["fedimpute.workflows"])
    assert workflow["workflow_url"] == node.workflow_url
    assert (
        workflow["workflow_type"],
        workflow["workflow_type_version"],
        workflow["workflow_engine"],
    ) == (
        "CWL",
        "v1.2",
        "cwltool",
    )
    # The API is also answered at the root of the node's URL (sapporo's default layout).
    assert httpx.get(f"{node.url}/service-info").json()["id"] == info["id"]


def test_the_node_serves_its_workflow_and_runs_nothing_else(node: Node):
    served = httpx.get(node.workflow_url)
    assert served.status_code == 200
    assert "cwlVersion: v1.2" in served.text
    assert (
        httpx.get(node.workflow_url.replace("imputation.cwl", "tools/beagle.cwl")).status_code
        == 200
    )
    assert (
        httpx.get(node.workflow_url.replace("imputation.cwl", "../../../README.md")).status_code
        == 404
    )
    assert httpx.get(f"{node.url}{WES}/executable-workflows").json() == {
        "workflows": [node.workflow_url]
    }
    other = node.submit(node.params([]), workflow_url="https://example.org/other.cwl")
    assert other.status_code == 400
    assert "only registered workflows can be executed" in other.json()["msg"]
    engine_flags = node.submit(
        node.params([]), workflow_engine_parameters=json.dumps({"--no-container": ""})
    )
    assert engine_flags.status_code == 400


def test_a_wes_client_gets_imputed_vcfs_and_the_qc_report(node: Node, file_server, tmp_path):
    """Known defects in the target (5 strand flips, 4 allele mismatches, 3 duplicated records)
    fetched over HTTP by the node; QC finds exactly them, and the imputation is accurate."""
    base, served = file_server
    clean = Target.read(node.heldout / "target.chr20.vcf.gz")
    clean.with_errors(flips=5, mismatches=4, duplicates=3).write(served / "study.chr20.vcf.gz")
    run_id = node.run_id(node.params([f"{base}/study.chr20.vcf.gz?sig=abc"], output_prefix="study"))
    log = node.wait(run_id)
    assert log["state"] == "COMPLETE", log["run_log"]["stderr"]
    assert "fetched target_vcfs[0] from " in log["run_log"]["stdout"]
    _assert_steps_dated_and_side_by_side(log["run_log"]["stderr"])
    outputs = {o["file_name"]: o["file_url"] for o in log["outputs"]}
    assert set(outputs) == {
        "study.chr20.dose.vcf.gz",
        "study.chr20.dose.vcf.gz.tbi",
        "study.chr20.beagle.log",
        "study.qc_report.json",
        "study.qc_report.html",
        "study.imputation_stats.json",
    }
    files = {}
    for name, url in outputs.items():
        response = httpx.get(url)
        assert response.status_code == 200, name
        files[name] = tmp_path / name
        files[name].write_bytes(response.content)

    qc = json.loads(files["study.qc_report.json"].read_text())["totals"]
    assert qc["sites_in"] == len(clean.records) + 3
    assert qc["flipped"] == 5
    assert qc["dropped"]["allele_mismatch"] == 4
    assert qc["dropped"]["duplicate"] == 6  # both copies of each duplicated record
    assert qc["dropped"]["strand_flip"] == qc["dropped"]["not_in_panel"] == 0
    assert qc["kept"] + qc["dropped_total"] == qc["sites_in"]
    assert qc["samples"] == 30
    assert "flipped to the panel's strand: 5;" in files["study.qc_report.html"].read_text()

    header, first = _first_record(files["study.chr20.dose.vcf.gz"])
    assert any(line.startswith("##INFO=<ID=DR2") for line in header)
    assert any(line.startswith("##INFO=<ID=IMP") for line in header)
    assert "##contig=<ID=chr20,length=64444167,assembly=hg38>\n" in header
    assert first[8] == "GT:DS:GP"
    assert {item.split("=")[0] for item in first[7].split(";")} >= {"DR2", "AF"}
    assert gzip.decompress(files["study.chr20.dose.vcf.gz.tbi"].read_bytes())[:4] == b"TBI\x01"

    stats = json.loads(files["study.imputation_stats.json"].read_text())["totals"]
    assert stats["genotyped"] == qc["kept"]
    assert stats["imputed"] > 20 * qc["kept"]
    assert [b["maf_bin"] for b in stats["by_maf"]] == ["<1%", "1-5%", ">5%"]

    accuracy = evaluate(
        files["study.chr20.dose.vcf.gz"],
        node.heldout / "truth.chr20.vcf.gz",
        node.data_dir / "panels" / "sim-ooa-chr20" / "chr20.sites.vcf.gz",
    )
    common = next(b for b in accuracy["by_maf"] if b["maf_bin"] == ">5%")
    assert common["sites"] > 1000
    assert common["r2"] >= 0.9, accuracy


def _assert_steps_dated_and_side_by_side(stderr: str) -> None:
    """The run log dates cwltool's lines (where the time went), and the statistics and the r²
    filter, which both need only Beagle's output, started before either of them ended."""
    steps = re.findall(
        r"^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\] INFO \[step (\w+)\] (\w+)", stderr, re.M
    )
    assert ("beagle", "start") in steps, stderr[-3000:]
    started = {steps.index(("stats", "start")), steps.index(("filter", "start"))}
    ended = {steps.index(("stats", "completed")), steps.index(("filter", "completed"))}
    assert max(started) < min(ended), steps


def _first_record(path: Path) -> tuple[list[str], list[str]]:
    header = []
    with gzip.open(path, "rt") as stream:
        for line in stream:
            if line.startswith("#"):
                header.append(line)
                continue
            return header, line.rstrip("\n").split("\t")
    raise AssertionError(f"{path} has no record")


def test_a_run_can_be_canceled(node: Node):
    run_id = node.run_id(
        node.params([(node.heldout / "target.chr20.vcf.gz").as_uri()], output_prefix="cancel")
    )
    for _ in range(120):
        if httpx.get(f"{node.url}{WES}/runs/{run_id}/status").json()["state"] == "RUNNING":
            break
        time.sleep(0.25)
    assert httpx.post(f"{node.url}{WES}/runs/{run_id}/cancel").json() == {"run_id": run_id}
    log = node.wait(run_id, within=60)
    assert log["state"] == "CANCELED"
