"""The validator on its own: statistics, build detection with evidence, limits; and recovery of
validations a crashed replica left behind."""

from pathlib import Path

import pytest
from sqlalchemy import update

from file_manager.models import StoredFile
from file_manager.testdata import VcfSpec, write_vcf
from file_manager.validation.service import requeue_backlog
from file_manager.vcf.builds import detect_build
from file_manager.vcf.validator import Limits, validate

from .conftest import good_vcf, upload_raw, wait_validated


def run(tmp_path: Path, spec: VcfSpec, **kwargs):
    path = write_vcf(tmp_path / "f.vcf.gz", spec)
    return validate(path, index_path=tmp_path / "f.tbi", **kwargs)


def test_statistics(tmp_path):
    spec = VcfSpec(
        samples=12,
        variants=120,
        indel_every=7,
        multiallelic_every=11,
        non_acgt_every=13,
        duplicate_position_every=30,
        phased=False,
    )
    report = run(tmp_path, spec)
    stats = report.statistics
    assert not report.errors, report.errors
    assert (stats.samples, stats.variants, stats.chromosome) == (12, 120, "chr20")
    assert stats.phased is False
    assert stats.indels == 17  # every 7th
    assert stats.multi_allelic == 9  # every 11th, but 77 is an indel
    assert stats.non_acgt == 8  # every 13th, but 91 is an indel
    assert stats.duplicate_positions == 4
    assert stats.snps == 120 - 17
    assert stats.first_position < stats.last_position
    assert report.index_built
    assert (tmp_path / "f.tbi").exists()
    warnings = " ".join(w.message for w in report.warnings)
    assert "At least 20 samples must be uploaded." in warnings
    assert "unphased" in warnings


@pytest.mark.parametrize(("build", "prefix"), [("hg19", False), ("hg38", True)])
def test_build_detected_from_contig_lengths_with_evidence(tmp_path, build, prefix):
    report = run(tmp_path, VcfSpec(build=build))
    assert report.build["detected"] == build
    assert report.build["detected_from"] == "contig_lengths"
    evidence = " ".join(report.build["evidence"])
    assert ("249,250,621" if build == "hg19" else "248,956,422") in evidence
    assert ("has" if prefix else "lacks") + " the 'chr' prefix" in evidence


def test_build_guessed_from_prefix_without_contigs(tmp_path):
    report = run(tmp_path, VcfSpec(build="hg38", contig_lines=False))
    assert report.build["detected"] == "hg38"
    assert report.build["detected_from"] == "chr_prefix"
    assert any("could not be determined" in w.message for w in report.warnings)


def test_declared_build_disagreeing_with_contigs_is_a_warning(tmp_path):
    report = run(tmp_path, VcfSpec(build="hg38"), declared_build="hg19")
    assert any("declared build is hg19" in w.message for w in report.warnings)
    assert any("not a valid hg19 encoding" in e.message for e in report.errors)


def test_conflicting_contig_lengths():
    detection = detect_build({"chr1": 248_956_422, "chr2": 243_199_373}, "chr1")
    assert detection.conflicting
    assert detection.detected is None


def test_line_length_and_header_caps(tmp_path):
    long_header = VcfSpec(extra_header_lines=["##note=" + "x" * 5000])
    report = run(tmp_path, long_header, limits=Limits(max_header_bytes=2048))
    assert "the header is larger than 2048 bytes" in report.errors[0].message
    report = run(tmp_path, VcfSpec(samples=400), limits=Limits(max_line_bytes=1024))
    assert "longer than 1024 bytes" in report.errors[0].message


def test_chr23_and_mt_are_allowed(tmp_path):
    assert not run(tmp_path, VcfSpec(chromosome="X")).errors
    report = run(tmp_path, VcfSpec(chromosome="MT", build="hg19"), declared_build="hg19")
    assert not report.errors, report.errors


async def test_validation_left_by_a_dead_replica_is_picked_up(client, app, alice, db):
    meta = (await upload_raw(client, alice, good_vcf())).json()
    await wait_validated(app)
    # pretend a replica took the lease and died before finishing
    await db.execute(
        update(StoredFile).values(
            status="validating", validation_report=None, validation_lease_until=None
        )
    )
    await db.commit()
    queued = await requeue_backlog(app.state.reaper.sessionmaker, app.state.validation_queue.submit)
    assert queued == 1
    await wait_validated(app)
    file = (await client.get(f"/files/{meta['id']}", headers=alice)).json()
    assert file["status"] == "valid"


async def test_a_held_lease_is_not_taken_twice(client, app, alice, db):
    from datetime import timedelta

    from fedimpute_shared.db import utcnow

    await upload_raw(client, alice, b"x", filename="a.bed")
    await db.execute(
        update(StoredFile).values(
            status="validating", validation_lease_until=utcnow() + timedelta(minutes=5)
        )
    )
    await db.commit()
    assert await requeue_backlog(app.state.reaper.sessionmaker, lambda _: None) == 0
