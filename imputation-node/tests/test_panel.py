"""The simulated panel: its layout, its held-out people, and that a seed gives the same bytes."""

from __future__ import annotations

import gzip
import hashlib
import itertools
import json
from pathlib import Path

from .conftest import Node, node_python


def content_digest(folder: Path) -> dict[str, str]:
    """Digest of each file's content (VCFs decompressed: the index bytes follow from them)."""
    digests = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file() and path.suffix != ".tbi":
            data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
            digests[str(path.relative_to(folder))] = hashlib.sha256(data).hexdigest()
    return digests


def rows(path: Path) -> tuple[list[str], list[list[str]]]:
    with gzip.open(path, "rt") as stream:
        lines = [line.rstrip("\n") for line in stream]
    header = [line for line in lines if line.startswith("#")]
    return header, [line.split("\t") for line in lines if not line.startswith("#")]


def test_the_node_generated_the_ci_panel_on_first_start(node: Node):
    panel = node.data_dir / "panels" / "sim-ooa-chr20"
    manifest = json.loads((panel / "panel.json").read_text())
    assert {
        k: manifest[k] for k in ("id", "version", "build", "populations", "samples", "chromosomes")
    } == {
        "id": "sim-ooa-chr20",
        "version": "1.0.0",
        "build": "hg38",
        "populations": ["afr", "eur", "eas", "all"],
        "samples": 300,
        "chromosomes": ["20"],
    }
    for name in (
        "chr20.vcf.gz",
        "chr20.vcf.gz.tbi",
        "chr20.sites.vcf.gz",
        "chr20.map",
        "samples.tsv",
    ):
        assert (panel / name).is_file(), name
    header, records = rows(panel / "chr20.vcf.gz")
    assert "##contig=<ID=chr20,length=64444167,assembly=hg38>" in header
    samples = header[-1].split("\t")[9:]
    assert len(samples) == 300
    assert {s[:3] for s in samples} == {"AFR", "EUR", "EAS"}
    positions = [int(r[1]) for r in records]
    assert positions == sorted(positions)
    assert positions[0] >= 35_000_001
    assert positions[-1] <= 36_000_000
    assert all("|" in g for g in records[0][9:])
    assert manifest["contigs"]["chr20"]["sites_count"] == len(records)


def test_the_target_is_an_array_like_subset_of_the_truth(node: Node):
    t_header, target = rows(node.heldout / "target.chr20.vcf.gz")
    _, truth = rows(node.heldout / "truth.chr20.vcf.gz")
    _, sites = rows(node.data_dir / "panels" / "sim-ooa-chr20" / "chr20.sites.vcf.gz")
    panel_af = {int(s[1]): float(s[7].split(";")[2].removeprefix("AF=")) for s in sites}
    target_pos = [int(r[1]) for r in target]
    assert set(target_pos) <= {int(r[1]) for r in truth}
    assert len(truth) == len(sites)
    assert 200 < len(target) < len(truth) / 10
    assert all(min(panel_af[p], 1 - panel_af[p]) >= 0.05 for p in target_pos)
    assert min(b - a for a, b in itertools.pairwise(target_pos)) >= 2500
    held_out = t_header[-1].split("\t")[9:]
    assert len(held_out) == 30
    assert all(s.startswith("TGT_") for s in held_out)
    assert all("/" in g for g in target[0][9:])  # unphased, as an array reports them


def test_a_seed_gives_the_same_bytes_and_another_seed_other_data(node: Node, tmp_path):
    node_python("panel", "--size", "ci", "--data-dir", str(tmp_path / "same"))
    node_python("panel", "--size", "ci", "--data-dir", str(tmp_path / "other"), "--seed", "7")
    original = content_digest(node.data_dir / "panels") | content_digest(node.data_dir / "heldout")
    same = content_digest(tmp_path / "same" / "panels") | content_digest(
        tmp_path / "same" / "heldout"
    )
    other = content_digest(tmp_path / "other" / "panels") | content_digest(
        tmp_path / "other" / "heldout"
    )
    assert same == original
    assert other["sim-ooa-chr20/chr20.vcf.gz"] != original["sim-ooa-chr20/chr20.vcf.gz"]
