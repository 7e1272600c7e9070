"""The spec §7 input rules and QC rules, message for message, plus BGZF and the result zips."""

from __future__ import annotations

import gzip
import io
import zipfile

import pytest
import pyzipper

from sandbox.archive import encrypted_zip
from sandbox.testdata import make_vcf
from sandbox.vcf.bgzf import bgzf_compress, decompress, is_bgzf
from sandbox.vcf.qc import QcSettings, run_qc
from sandbox.vcf.validation import JobParams, ValidationError, ValidationLimits, validate_job

PARAMS = JobParams(
    build="hg19",
    phasing="eagle",
    population="eur",
    mode="imputation",
    r2_filter="0",
    panel_id="apps@1000g-phase-3-v5@2.0.0",
    panel_build="hg19",
    panel_populations=("afr", "eur", "mixed"),
)
LIMITS = ValidationLimits()


def _message(uploads, params=PARAMS, limits=LIMITS) -> str:
    with pytest.raises(ValidationError) as caught:
        validate_job(uploads, params, limits)
    return caught.value.message


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        (
            {"compression": "gzip"},
            "The provided VCF file is malformed.\nError: [tabix] the compression of 'a.vcf.gz' is not BGZF",
        ),
        (
            {"unsorted": True},
            "The provided VCF file is malformed.\nError: [E::hts_idx_push] Unsorted positions on sequence #1: "
            "62000 followed by 61000\ntbx_index_build failed: a.vcf.gz",
        ),
        ({"space_delimited": True}, "The provided VCF file is not tab-delimited"),
        ({"no_sample_columns": True}, "Index 9 out of bounds for length 9"),
        (
            {"second_chrom": "21"},
            "The provided VCF file contains more than one chromosome. Please split your input VCF file by chromosome",
        ),
        ({"chrom": "Y"}, "Invalid chromosome found: Y"),
        ({"chrom": "M"}, "Invalid chromosome found: M"),
        ({"chrom": "20_random"}, "Invalid chromosome found: 20_random"),
        (
            {"ref_equals_alt": True},
            "The provided VCF file is malformed at variation rs1020: reference allele (G) and alternate allele  (G) are the same.",
        ),
        ({"duplicate_sample": True}, "Two individuals or more have the following ID: S1"),
        ({"samples": 19}, "At least 20 samples must be uploaded."),
        (
            {"chrom": "chr20"},
            "Your upload data contains chromosome 'chr20'. This is not a valid hg19 encoding. Please ensure that "
            "your input data is build hg19 and chromosome is encoded as '20'.",
        ),
    ],
)
def test_file_level_rules(changes, expected):
    assert _message([("a.vcf.gz", make_vcf(**changes))]) == expected


def test_hg38_needs_chr_prefix():
    params = JobParams(**{**PARAMS.__dict__, "build": "hg38"})
    assert _message([("a.vcf.gz", make_vcf())], params) == (
        "Your upload data contains chromosome '20'. This is not a valid hg38 encoding. Please ensure that your "
        "input data is build hg38 and chromosome is encoded as 'chr20'."
    )


def test_only_vcf_gz_names_are_read():
    assert _message([("chr20.vcf", make_vcf())]) == "No vcf.gz input files detected."


def test_same_sample_count_across_files():
    uploads = [
        ("chr20.vcf.gz", make_vcf(samples=25)),
        ("chr21.vcf.gz", make_vcf(chrom="21", samples=30)),
    ]
    assert (
        _message(uploads)
        == "Please double check, if all uploaded VCF files include the same amount of samples (30 vs 25)"
    )


def test_max_samples_names_the_contact():
    limits = ValidationLimits(max_samples=21, contact_name="Ada", contact_email="ada@example.org")
    assert _message([("a.vcf.gz", make_vcf())], limits=limits) == (
        'The maximum number of samples is 21. Please contact Ada (<a href="ada@example.org">ada@example.org</a>) '
        "to discuss this large imputation."
    )


def test_zero_disables_sample_bounds():
    validate_job([("a.vcf.gz", make_vcf(samples=2))], PARAMS, ValidationLimits(min_samples=0))


def test_unphased_with_no_phasing():
    params = JobParams(**{**PARAMS.__dict__, "phasing": "no_phasing"})
    assert _message([("a.vcf.gz", make_vcf(unphased=True))], params) == (
        "Your input data is unphased. Please select an algorithm for phasing."
    )


def test_population_must_be_declared_by_panel():
    params = JobParams(**{**PARAMS.__dict__, "population": "asn"})
    assert _message([("a.vcf.gz", make_vcf())], params) == (
        "Population 'asn' is not supported by reference panel 'apps@1000g-phase-3-v5@2.0.0'.\n"
        "Available populations:\n - afr\n - eur\n - mixed"
    )


def test_unknown_phasing_engine():
    params = JobParams(**{**PARAMS.__dict__, "phasing": "shapeit"})
    assert _message([("a.vcf.gz", make_vcf())], params) == (
        "For phasing, only options 'eagle', 'beagle' or 'no_phasing' are allowed."
    )


def test_summary_of_a_valid_job():
    result = validate_job(
        [("chr20.vcf.gz", make_vcf()), ("chr21.vcf.gz", make_vcf(chrom="21", unphased=True))],
        PARAMS,
        LIMITS,
    )
    assert result.summary.splitlines() == [
        "2 valid VCF file(s) found.",
        "",
        "Samples: 25",
        "Chromosomes: 20 21",
        "SNPs: 80",
        "Chunks: 2",
        "Datatype: unphased",
        "Build: hg19",
        "Reference Panel: apps@1000g-phase-3-v5@2.0.0 (hg19)",
        "Population: eur",
        "Phasing: eagle",
        "Mode: imputation",
    ]


def _qc_message(files, build="hg19", panel_build="hg19", settings=QcSettings()):
    validated = validate_job(files, JobParams(**{**PARAMS.__dict__, "build": build}), LIMITS)
    with pytest.raises(ValidationError) as caught:
        run_qc(validated.files, build, panel_build, settings)
    return caught.value.message


def test_qc_no_chunk_left():
    message = _qc_message([("a.vcf.gz", make_vcf(variants=2))])
    assert message == "Error: No chunks passed the QC step. Imputation cannot be started!"


def test_qc_chrx_mixed_genotypes():
    vcf = make_vcf(chrom="X", start=3_000_000, mixed_rate=0.3)
    assert _qc_message([("x.vcf.gz", vcf)]) == (
        "Error: Chromosome X nonPAR region includes > 10 % mixed genotypes. Imputation cannot be started!"
    )


def test_qc_chrx_ambiguous_samples():
    text = gzip.decompress(make_vcf(chrom="X", start=3_000_000, compression="gzip")).decode()
    lines = text.splitlines()
    fields = lines[-1].split("\t")
    fields[9] = "1"  # sample 1 is diploid elsewhere, haploid here
    lines[-1] = "\t".join(fields)
    vcf = bgzf_compress(("\n".join(lines) + "\n").encode())
    assert _qc_message([("x.vcf.gz", vcf)]) == (
        "Error: ChrX nonPAR region includes ambiguous samples (haploid and diploid positions). "
        "Imputation cannot be started! See chrX-info.txt"
    )


def test_qc_liftover_needs_a_chain():
    assert _qc_message([("a.vcf.gz", make_vcf())], build="hg19", panel_build="hg17") == (
        "Currently we do not support liftOver from hg19 to hg17"
    )


def test_bgzf_round_trip_and_magic():
    data = b"x" * 200_000
    packed = bgzf_compress(data)
    assert is_bgzf(packed)
    assert not is_bgzf(gzip.compress(data))
    assert decompress(packed) == data


def test_zipcrypto_and_aes_zips_open_with_the_password():
    plain = zipfile.ZipFile(io.BytesIO(encrypted_zip({"a.txt": b"hello"}, "S3cret!")))
    assert plain.read("a.txt", pwd=b"S3cret!") == b"hello"
    with pytest.raises(RuntimeError):
        plain.read("a.txt", pwd=b"wrong")
    aes = pyzipper.AESZipFile(io.BytesIO(encrypted_zip({"a.txt": b"hello"}, "pw", aes=True)))
    assert aes.read("a.txt", pwd=b"pw") == b"hello"
