"""The QC step's rules (workflow/scripts/qc.py), on small hand-made targets and panels."""

from __future__ import annotations

import gzip
import io
import json
import subprocess
from pathlib import Path

import pytest

from .conftest import NODE_ROOT, load_script

qc = load_script("qc")

PANEL_SITES = [
    # pos, ref, alt, AF (all), AF_afr
    (1000, "A", "G", 0.30, 0.50),
    (2000, "C", "T", 0.40, 0.10),
    (3000, "A", "T", 0.10, 0.20),  # strand-ambiguous
    (4000, "G", "A", 0.25, 0.25),
    (5000, "C", "A", 0.30, 0.30),
    (6000, "T", "C", 0.30, 0.30),
    (7000, "G", "T", 0.30, 0.30),
    (8000, "A", "C", 0.30, 0.30),
    (9000, "C", "G", 0.20, 0.20),  # strand-ambiguous
    (9500, "T", "G", 0.30, 0.30),
]
HEADER = "##fileformat=VCFv4.2\n##contig=<ID=chr20,length=64444167>\n"
COLUMNS = "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tS1\tS2\tS3\tS4\n"


@pytest.fixture
def panel(tmp_path: Path) -> Path:
    directory = tmp_path / "panel"
    directory.mkdir()
    manifest = {
        "id": "tiny",
        "name": "Tiny panel",
        "version": "1.0.0",
        "build": "hg38",
        "populations": ["afr", "all"],
        "samples": 2,
        "chromosomes": ["20"],
        "contigs": {"chr20": {"length": 64444167, "start": 1, "end": 10000}},
    }
    (directory / "panel.json").write_text(json.dumps(manifest))
    lines = [
        f"chr20\t{p}\t.\t{r}\t{a}\t.\tPASS\tAF={af};AF_afr={afr}\n"
        for p, r, a, af, afr in PANEL_SITES
    ]
    with gzip.open(directory / "chr20.sites.vcf.gz", "wt") as out:
        out.write(HEADER + "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n" + "".join(lines))
    (directory / "chr20.vcf.gz").write_bytes(b"")
    (directory / "chr20.map").write_text("")
    return directory


def bgzip(path: Path, text: str) -> Path:
    path.write_bytes(
        subprocess.run(["bgzip", "-c"], input=text.encode(), capture_output=True, check=True).stdout
    )
    return path


def record(pos: int, ref: str, alt: str, gts: str, chrom: str = "chr20") -> str:
    return (
        "\t".join(
            [
                chrom,
                str(pos),
                f"rs{pos}",
                ref,
                alt,
                ".",
                "PASS",
                ".",
                "GT:GQ",
                *(f"{g}:30" for g in gts.split()),
            ]
        )
        + "\n"
    )


def run(
    target: Path,
    panel: Path,
    build: str = "hg38",
    population: str = "all",
    min_samples: int = 1,
    **options,
):
    out = io.StringIO()
    result = qc.run_qc(
        target, target.name, panel, build, population, min_samples, qc.Options(**options), out
    )
    body = [line.split("\t") for line in out.getvalue().splitlines() if not line.startswith("#")]
    return result.report, body


# ---------------------------------------------------------------------------- allele rules


@pytest.mark.parametrize(
    ("ref", "alt", "site", "alt_freq", "expected"),
    [
        ("A", "G", ("A", "G", 0.3), 0.3, ("match", False)),
        ("G", "A", ("A", "G", 0.3), 0.7, ("match", True)),
        ("T", "C", ("A", "G", 0.3), 0.3, ("flip", False)),
        ("C", "T", ("A", "G", 0.3), 0.7, ("flip", True)),
        ("A", "C", ("A", "G", 0.3), 0.3, ("allele_mismatch", False)),
        ("A", "T", ("A", "T", 0.1), 0.12, ("match", False)),
        # An A/T site whose ALT frequency is the panel's REF frequency: a hidden strand flip.
        ("A", "T", ("A", "T", 0.1), 0.9, ("strand_ambiguous_af_mismatch", False)),
        ("T", "A", ("A", "T", 0.1), 0.9, ("match", True)),
        ("A", "T", ("A", "T", 0.1), None, ("match", False)),
    ],
)
def test_classify_alleles(ref, alt, site, alt_freq, expected):
    assert qc.classify_alleles(ref, alt, qc.PanelSite(*site), alt_freq, 0.2) == expected


def test_every_rule_counts_its_sites_and_kept_sites_take_the_panel_orientation(tmp_path, panel):
    target = bgzip(
        tmp_path / "t.vcf.gz",
        HEADER + COLUMNS
        + record(500, "A", "C", "0/1 0/0 0/0 0/0")  # not in the panel
        + record(1000, "A", "G", "0/1 0/0 1/1 0/0")  # kept as is
        + record(2000, "T", "C", "0/0 0/0 0/1 0/1")  # swapped: kept, recoded
        + record(3000, "A", "T", "1/1 1/1 1/1 0/1")  # ambiguous, ALT freq 0.875 vs 0.1: dropped
        + record(4000, "C", "T", "0/1 0/0 0/0 0/0")  # strand flip: flipped to G/A
        + record(5000, "C", "G", "0/1 0/0 0/0 0/0")  # allele mismatch
        + record(6000, "T", "C", "0/1 ./. ./. 0/0")  # half missing
        + record(7000, "G", "T", "0/0 0/0 0/0 0/0")  # monomorphic
        + record(8000, "A", "C", "0/1 0/0 0/0 0/0")  # duplicate position ...
        + record(8000, "A", "C", "0/1 0/0 0/0 0/0")  # ... both dropped
        + record(9000, "C", "G,T", "0/1 0/0 0/0 0/0")  # multiallelic
        + record(9500, "A", "C", "0|1 1|0 0|0 0|0"),  # strand flip (T/G), phased
    )  # fmt: skip
    report, body = run(target, panel)
    assert report["sites_in"] == 12
    assert report["kept"] == 4
    assert report["flipped"] == 2
    assert report["swapped"] == 1
    assert report["dropped"] == {
        "duplicate": 2,
        "not_in_panel": 1,
        "multiallelic": 1,
        "allele_mismatch": 1,
        "strand_flip": 0,
        "strand_ambiguous_af_mismatch": 1,
        "high_missing_rate": 1,
        "monomorphic": 1,
    }
    assert report["dropped_total"] == 8
    assert report["samples"] == 4
    assert [(r[1], r[3], r[4], r[8], r[9:]) for r in body] == [
        ("1000", "A", "G", "GT", ["0/1", "0/0", "1/1", "0/0"]),
        ("2000", "C", "T", "GT", ["1/1", "1/1", "1/0", "1/0"]),
        ("4000", "G", "A", "GT", ["0/1", "0/0", "0/0", "0/0"]),
        ("9500", "T", "G", "GT", ["0|1", "1|0", "0|0", "0|0"]),
    ]
    assert report["dropped_total"] + report["kept"] == report["sites_in"]


def test_a_strand_flip_with_swapped_alleles_is_flipped_and_recoded(tmp_path, panel):
    target = bgzip(
        tmp_path / "t.vcf.gz", HEADER + COLUMNS + record(9500, "C", "A", "0|1 1|0 0|0 0|0")
    )
    report, body = run(target, panel)
    # C/A is G/T on the other strand: the panel's T/G with REF and ALT swapped.
    assert (report["flipped"], report["swapped"]) == (1, 1)
    assert body[0][3:5] == ["T", "G"]
    assert body[0][9:] == ["1|0", "0|1", "1|1", "1|1"]


def test_strand_flips_can_be_dropped(tmp_path, panel):
    target = bgzip(
        tmp_path / "t.vcf.gz",
        HEADER
        + COLUMNS
        + record(1000, "A", "G", "0/1 0/0 1/1 0/0")
        + record(4000, "C", "T", "0/1 0/0 0/0 0/0"),
    )
    report, body = run(target, panel, drop_strand_flips=True)
    assert report["dropped"]["strand_flip"] == 1
    assert report["flipped"] == 0
    assert [r[1] for r in body] == ["1000"]


def test_the_population_chooses_the_allele_frequencies_of_the_ambiguous_check(tmp_path, panel):
    # ALT frequency 0.25 at the A/T site: 0.15 from the whole panel's 0.10, 0.05 from afr's 0.20.
    target = bgzip(
        tmp_path / "t.vcf.gz",
        HEADER
        + COLUMNS
        + record(1000, "A", "G", "0/1 0/0 1/1 0/0")
        + record(3000, "A", "T", "0/1 0/1 0/0 0/0"),
    )
    report, _ = run(target, panel, population="all", af_threshold=0.1)
    assert (report["kept"], report["dropped"]["strand_ambiguous_af_mismatch"]) == (1, 1)
    report, _ = run(target, panel, population="afr", af_threshold=0.1)
    assert (report["kept"], report["dropped"]["strand_ambiguous_af_mismatch"]) == (2, 0)


def test_a_target_named_without_chr_is_written_with_the_panels_contig(tmp_path, panel):
    header = "##fileformat=VCFv4.2\n"
    target = bgzip(
        tmp_path / "t.vcf.gz",
        header + COLUMNS + record(1000, "A", "G", "0/1 0/0 1/1 0/0", chrom="20"),
    )
    report, body = run(target, panel)
    assert report["chromosome"] == "chr20"
    assert body[0][0] == "chr20"


# ---------------------------------------------------------------------------- input errors


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            HEADER
            + COLUMNS
            + record(2000, "C", "T", "0/1 0/0 0/0 0/0")
            + record(1000, "A", "G", "0/1 0/0 0/0 0/0"),
            "t.vcf.gz is not sorted by position (chr20:1,000 comes after chr20:2,000 on data line 2)",
        ),
        (
            HEADER
            + COLUMNS
            + record(1000, "A", "G", "0/1 0/0 0/0 0/0")
            + record(1000, "A", "G", "0/1 0/0 0/0 0/0", chrom="chr21"),
            "has records on more than one chromosome (chr20 and chr21)",
        ),
        (
            "##fileformat=VCFv4.2\n##contig=<ID=20,length=63025520>\n"
            + COLUMNS
            + record(1000, "A", "G", "0/1 0/0 0/0 0/0", chrom="20"),
            "t.vcf.gz is on hg19 (##contig 20 length 63,025,520) but panel tiny is on hg38 (chr20 length 64,444,167)",
        ),
        (
            HEADER + COLUMNS + record(1000, "A", "G", "0/1 0/0 0/0 0/0", chrom="chr21"),
            "the target is on chromosome chr21 but panel tiny (hg38) covers chr20 only",
        ),
        (
            HEADER
            + COLUMNS
            + record(123, "A", "G", "0/1 0/0 0/0 0/0")
            + record(456, "A", "G", "0/1 0/0 0/0 0/0"),
            "no overlap with the panel: none of the 2 sites of t.vcf.gz (chr20:123-456) against panel tiny",
        ),
        (
            HEADER
            + COLUMNS
            + record(1000, "A", "C", "0/1 0/0 0/0 0/0")
            + record(2000, "C", "T", "0/0 0/0 0/0 0/0"),
            "no site passed QC: 2 sites of t.vcf.gz (chr20:1,000-2,000) against panel tiny (chr20:1-10,000, hg38); "
            "dropped: allele_mismatch 1, monomorphic 1",
        ),
        (
            HEADER
            + "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
            + "chr20\t1000\t.\tA\tG\t.\tPASS\t.\n",
            "t.vcf.gz has 0 sample(s); imputation needs at least 1",
        ),
        (HEADER + COLUMNS, "t.vcf.gz has no variant records"),
        ("not a vcf\n", "t.vcf.gz has no valid #CHROM header line"),
    ],
)
def test_input_errors_say_what_to_do(tmp_path, panel, text, message):
    target = bgzip(tmp_path / "t.vcf.gz", text)
    with pytest.raises(qc.InputError) as error:
        run(target, panel)
    assert message in str(error.value)


def test_plain_gzip_and_plain_text_cannot_be_indexed(tmp_path, panel):
    plain = tmp_path / "t.vcf"
    plain.write_text(HEADER + COLUMNS)
    with pytest.raises(
        qc.InputError, match=r"t\.vcf is a plain-text VCF, not bgzip-compressed.*bgzip t\.vcf"
    ):
        run(plain, panel)
    gz = tmp_path / "t.vcf.gz"
    gz.write_bytes(gzip.compress((HEADER + COLUMNS).encode()))
    with pytest.raises(qc.InputError, match="compressed with plain gzip, not bgzip"):
        run(gz, panel)


def test_build_population_and_sample_minimum_are_checked(tmp_path, panel):
    target = bgzip(
        tmp_path / "t.vcf.gz", HEADER + COLUMNS + record(1000, "A", "G", "0/1 0/0 1/1 0/0")
    )
    with pytest.raises(qc.InputError, match="build hg19 was requested but panel tiny is on hg38"):
        run(target, panel, build="hg19")
    with pytest.raises(
        qc.InputError, match=r"population 'eur' is not one of panel tiny's populations \(afr, all\)"
    ):
        run(target, panel, population="eur")
    with pytest.raises(qc.InputError, match=r"has 4 sample\(s\); imputation needs at least 5"):
        run(target, panel, min_samples=5)
    sites_only = bgzip(
        tmp_path / "s.vcf.gz", HEADER + "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
    )
    with pytest.raises(qc.InputError, match=r"has 0 sample\(s\); imputation needs at least 1"):
        run(sites_only, panel, min_samples=0)
    (panel / "chr20.map").unlink()
    with pytest.raises(qc.InputError, match=r"panel tiny lacks chr20\.map"):
        run(target, panel)


def test_main_writes_outputs_or_one_error_line(tmp_path, panel, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    good = bgzip(
        tmp_path / "good.vcf.gz", HEADER + COLUMNS + record(1000, "A", "G", "0/1 0/0 1/1 0/0")
    )
    args = ["--panel", str(panel), "--build", "hg38", "--prefix", "p"]
    assert qc.main(["--target", str(good), *args]) == 0
    assert (tmp_path / "chromosome.txt").read_text() == "chr20"
    assert json.loads((tmp_path / "p.chr20.qc.json").read_text())["kept"] == 1
    assert (tmp_path / "p.chr20.qc.vcf").read_text().startswith("##fileformat=VCFv4.2")
    assert capsys.readouterr().err == "QC good.vcf.gz: 1 sites in, 1 kept, 0 flipped, 0 dropped\n"
    bad = bgzip(tmp_path / "bad.vcf.gz", HEADER + COLUMNS)
    assert qc.main(["--target", str(bad), *args[:-1], "q"]) == 2
    assert capsys.readouterr().err.strip() == "ERROR: bad.vcf.gz has no variant records"
    assert not list(tmp_path.glob("q.*"))
    assert qc.main(["--target", str(good), *args[:-1], "../escape"]) == 2
    assert "ERROR: output_prefix '../escape' is not a plain file name" in capsys.readouterr().err
    assert not list(tmp_path.parent.glob("escape*"))


@pytest.mark.parametrize(
    "script", sorted((NODE_ROOT / "workflow" / "scripts").iterdir()), ids=lambda p: p.name
)
def test_scripts_hold_no_cwl_parameter_reference(script):
    # The scripts are included into CWL documents, where these would be evaluated.
    text = script.read_text()
    assert "$(" not in text
    assert "${" not in text
