"""Input validation of uploaded VCFs, with the exact messages Michigan Imputation Server 2 prints.

The order of the checks and their wording follow the ground truth named in
`specs/external-protocols.md` §7: IS2's `main.nf` (phasing engine, the `*.vcf.gz` glob), the
`tabix -p vcf` call of the `INPUT_VALIDATION_VCF` process, then imputationserver-utils
`InputValidationCommand` / `VcfFileUtil.load`, which stop at the first failing file. A failing
check raises `ValidationError`; the simulators turn its text into a `type: 1` step message
(Cloudgene) or a failed task log (WES).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sandbox.vcf.bgzf import decompress, is_bgzf

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "VALID_CHROMOSOMES",
    "JobParams",
    "ValidatedInput",
    "ValidationError",
    "ValidationLimits",
    "Variant",
    "VcfFile",
    "load_vcf",
    "tabix_check",
    "validate_job",
]

DEFAULT_CHUNK_SIZE = 20_000_000

# VcfFileUtil.validChromosomes: the only contigs the server accepts, compared after "chr" is stripped.
VALID_CHROMOSOMES = frozenset(
    [str(i) for i in range(1, 24)]
    + ["X", "MT"]
    + [f"chr{i}" for i in range(1, 24)]
    + ["chrX", "chrMT"]
)


class ValidationError(Exception):
    """A job-stopping problem; `message` is the exact text the real server shows."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Variant:
    """One data line, reduced to what QC and the results generator need."""

    chrom: str
    pos: int
    id: str
    ref: str
    alt: str
    genotypes: tuple[str, ...]


@dataclass(frozen=True)
class VcfFile:
    """A VCF that passed the file-level checks (what `VcfFileUtil.load` returns)."""

    name: str
    samples: tuple[str, ...]
    variants: tuple[Variant, ...]
    raw_chromosome: str
    chromosome: str
    phased: bool
    chunks: frozenset[int]

    @property
    def has_chr_prefix(self) -> bool:
        return self.raw_chromosome.startswith("chr")


@dataclass(frozen=True)
class ValidationLimits:
    """Server settings the checks depend on (IS2 `nextflow.config` defaults)."""

    min_samples: int = 20
    max_samples: int = 50_000
    contact_name: str = "Admin"
    contact_email: str = "admin@localhost"
    chunk_size: int = DEFAULT_CHUNK_SIZE


@dataclass(frozen=True)
class JobParams:
    """The submitted job parameters the validation reads."""

    build: str
    phasing: str
    population: str
    mode: str
    r2_filter: str
    panel_id: str
    panel_build: str
    panel_populations: tuple[str, ...]
    allowed_phasing: tuple[str, ...] = ("eagle", "beagle", "no_phasing")


@dataclass(frozen=True)
class ValidatedInput:
    """Files that passed validation, with the summary the server prints on success."""

    files: tuple[VcfFile, ...]
    summary: str


def _tabix_failure(detail: str) -> ValidationError:
    return ValidationError(f"The provided VCF file is malformed.\nError: {detail}")


def tabix_check(name: str, data: bytes) -> str:
    """Do what `tabix -p vcf` does before indexing and return the decompressed text.

    tabix refuses anything that is not BGZF (plain gzip included) and any file whose records are
    not sorted: positions must not decrease within a contig and a contig's records must be
    contiguous. The error text imitates htslib's so users recognise it. Lines tabix could not
    parse at all are left to `load_vcf`, so the "not tab-delimited" rule of the spec shows.
    """
    if not is_bgzf(data):
        raise _tabix_failure(f"[tabix] the compression of '{name}' is not BGZF")
    try:
        text = decompress(data).decode("utf-8", errors="replace")
    except OSError:
        raise _tabix_failure(
            f"[E::bgzf_read_block] Invalid BGZF header at offset 0\ntbx_index_build failed: {name}"
        ) from None
    seen: list[str] = []
    last_pos = 0
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        fields = line.split("\t")
        if len(fields) < 2 or not fields[1].isdigit():
            # Left to the line checks below, whose messages (spec §7 rule 3) users know better.
            continue
        chrom, pos = fields[0], int(fields[1])
        if not seen or seen[-1] != chrom:
            if chrom in seen:
                raise _tabix_failure(
                    f"[E::hts_idx_push] Chromosome blocks not continuous\ntbx_index_build failed: {name}"
                )
            seen.append(chrom)
        elif pos < last_pos:
            raise _tabix_failure(
                f"[E::hts_idx_push] Unsorted positions on sequence #{len(seen)}: "
                f"{last_pos} followed by {pos}\ntbx_index_build failed: {name}"
            )
        last_pos = pos
    return text


def _check_unique_samples(header: str) -> tuple[str, ...]:
    """The `#CHROM` columns must be unique (all of them, as VcfFileUtil compares every column)."""
    columns = header.split("\t")
    seen: set[str] = set()
    for column in columns:
        if column in seen:
            raise ValidationError(f"Two individuals or more have the following ID: {column}")
        seen.add(column)
    return tuple(columns[9:])


def _parse_position(value: str) -> int:
    """Java's `Integer.parseInt`, with its exception message, which the server shows verbatim."""
    try:
        return int(value)
    except ValueError:
        raise ValidationError(f'For input string: "{value}"') from None


def _chunk_of(position: int, chunk_size: int) -> int:
    """VcfFileUtil's chunk number: a position exactly on a boundary belongs to the lower chunk."""
    chunk = position // chunk_size
    return chunk - 1 if position % chunk_size == 0 else chunk


def load_vcf(name: str, text: str, chunk_size: int = DEFAULT_CHUNK_SIZE) -> VcfFile:
    """Read a decompressed VCF the way `VcfFileUtil.load` does, raising its first error.

    Java splits data lines with `split("\\t", 10)`, so the tenth field holds every sample column:
    the phasing test (any `/`) therefore looks at all samples of a line, not only the first.
    """
    samples: tuple[str, ...] = ()
    variants: list[Variant] = []
    raw_chromosomes: list[str] = []
    chromosomes: list[str] = []
    phased = True
    for line in text.splitlines():
        if line.startswith("#"):
            if line.startswith("#CHROM"):
                samples = _check_unique_samples(line)
            continue
        if not line:
            continue
        tiles = line.split("\t", 9)
        if len(tiles) < 3:
            raise ValidationError("The provided VCF file is not tab-delimited")
        raw = tiles[0]
        if raw not in raw_chromosomes:
            raw_chromosomes.append(raw)
        chromosome = raw.replace("chr", "")
        position = _parse_position(tiles[1])
        if len(tiles) < 10:
            raise ValidationError(f"Index 9 out of bounds for length {len(tiles)}")
        if "/" in tiles[9]:
            phased = False
        if chromosome not in chromosomes:
            chromosomes.append(chromosome)
        if len(chromosomes) > 1:
            raise ValidationError(
                "The provided VCF file contains more than one chromosome. "
                "Please split your input VCF file by chromosome"
            )
        if tiles[3] == tiles[4]:
            raise ValidationError(
                f"The provided VCF file is malformed at variation {tiles[2]}: reference allele "
                f"({tiles[3]}) and alternate allele  ({tiles[4]}) are the same."
            )
        genotypes = tuple(sample.split(":", 1)[0] for sample in tiles[9].split("\t"))
        variants.append(Variant(raw, position, tiles[2], tiles[3], tiles[4], genotypes))
    if not variants:
        raise ValidationError(
            "No genotypes found in the VCF file. It appears the file contains only the header."
        )
    return VcfFile(
        name=name,
        samples=samples,
        variants=tuple(variants),
        raw_chromosome=raw_chromosomes[0],
        chromosome=chromosomes[0],
        phased=phased,
        chunks=frozenset(_chunk_of(v.pos, chunk_size) for v in variants),
    )


def _check_population(params: JobParams) -> None:
    """`checkParameters`: the population must be one the panel declares (`off` means no check)."""
    population = params.population or "off"
    if population == "off":
        return
    if population.lower() in (p.lower() for p in params.panel_populations):
        return
    lines = [f"Population '{population}' is not supported by reference panel '{params.panel_id}'."]
    lines.append("Available populations:")
    lines.extend(f" - {p}" for p in params.panel_populations)
    raise ValidationError("\n".join(lines))


def _check_file(
    vcf: VcfFile, samples_so_far: int, params: JobParams, limits: ValidationLimits
) -> None:
    """The per-file checks of `InputValidationCommand.checkVcfFiles`, in its order."""
    chromosome = vcf.chromosome
    if chromosome not in VALID_CHROMOSOMES:
        raise ValidationError(f"Invalid chromosome found: {chromosome}")
    count = len(vcf.samples)
    if samples_so_far != 0 and samples_so_far != count:
        raise ValidationError(
            "Please double check, if all uploaded VCF files include the same amount of samples "
            f"({count} vs {samples_so_far})"
        )
    if count < limits.min_samples and limits.min_samples != 0:
        raise ValidationError(f"At least {limits.min_samples} samples must be uploaded.")
    if count > limits.max_samples and limits.max_samples != 0:
        raise ValidationError(
            f"The maximum number of samples is {limits.max_samples}. Please contact "
            f'{limits.contact_name} (<a href="{limits.contact_email}">{limits.contact_email}</a>) '
            "to discuss this large imputation."
        )
    if params.build == "hg19" and vcf.has_chr_prefix:
        raise ValidationError(
            f"Your upload data contains chromosome '{vcf.raw_chromosome}'. This is not a valid hg19 "
            "encoding. Please ensure that your input data is build hg19 and chromosome is encoded "
            f"as '{chromosome}'."
        )
    if params.build == "hg38" and not vcf.has_chr_prefix:
        raise ValidationError(
            f"Your upload data contains chromosome '{vcf.raw_chromosome}'. This is not a valid hg38 "
            "encoding. Please ensure that your input data is build hg38 and chromosome is encoded "
            f"as 'chr{chromosome}'."
        )


def _summary(files: Sequence[VcfFile], phased: bool, params: JobParams) -> str:
    """The success message of the validation step, line for line as ISU prints it."""
    lines = [
        f"{len(files)} valid VCF file(s) found.",
        "",
        f"Samples: {len(files[0].samples)}",
        "Chromosomes: " + " ".join(f.chromosome for f in files),
        f"SNPs: {sum(len(f.variants) for f in files)}",
        f"Chunks: {sum(len(f.chunks) for f in files)}",
        "Datatype: " + ("phased" if phased else "unphased"),
        f"Build: {params.build or 'hg19'}",
        f"Reference Panel: {params.panel_id} ({params.panel_build})",
        f"Population: {params.population or 'off'}",
        f"Phasing: {params.phasing}",
        f"Mode: {params.mode}",
    ]
    if params.r2_filter and params.r2_filter != "0":
        lines.append(f"Rsq filter: {params.r2_filter}")
    return "\n".join(lines)


def validate_job(
    uploads: Sequence[tuple[str, bytes]], params: JobParams, limits: ValidationLimits
) -> ValidatedInput:
    """Run every input check of a job in the server's order; raise the first failure.

    Files whose names do not end in `.vcf.gz` are ignored, as IS2 only globs `*.vcf.gz`.
    """
    if params.phasing not in params.allowed_phasing:
        quoted = [f"'{p}'" for p in params.allowed_phasing]
        options = (
            " or ".join([", ".join(quoted[:-1]), quoted[-1]]) if len(quoted) > 1 else quoted[0]
        )
        raise ValidationError(f"For phasing, only options {options} are allowed.")
    vcf_uploads = sorted((u for u in uploads if u[0].endswith(".vcf.gz")), key=lambda u: u[0])
    if not vcf_uploads:
        raise ValidationError("No vcf.gz input files detected.")
    _check_population(params)
    texts = [(name, tabix_check(name, data)) for name, data in vcf_uploads]
    files: list[VcfFile] = []
    phased = True
    samples_so_far = 0
    for name, text in texts:
        vcf = load_vcf(name, text, limits.chunk_size)
        _check_file(vcf, samples_so_far, params, limits)
        samples_so_far = len(vcf.samples)
        phased = phased and (vcf.phased or vcf.chromosome == "MT")
        files.append(vcf)
    if not phased and params.phasing in ("", "no_phasing"):
        raise ValidationError(
            "Your input data is unphased. Please select an algorithm for phasing."
        )
    return ValidatedInput(files=tuple(files), summary=_summary(files, phased, params))
