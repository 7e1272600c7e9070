"""Simulated reference panels: an out-of-Africa coalescent simulation written as a real panel.

No real panel can be downloaded here, and real panels are licensed, so the node ships a generator.
It simulates one sample of African, European and East Asian genomes under the three-population
out-of-Africa model of Gutenkunst et al. (2009, PLoS Genet 5:e1000695, the "YRI/CEU/CHB" model
with its published sizes, times, growth and migration rates; 25-year generations), on a segment of
chr20 placed at hg38 coordinates, and splits the simulated people in two:

- the **reference panel**: phased genotypes of most people, with per-population allele
  frequencies, a sites-only copy for QC and a PLINK genetic map (the layout the workflow reads,
  described in ``panel.json``);
- the **held-out** people: their genotypes masked to a genotyping-array-like subset of sites (the
  imputation target, unphased as an array reports them) and their full phased genotypes (the
  truth that accuracy is measured against).

Alleles are simulated bases, not the hg38 reference sequence; positions, contig name and length
are hg38's. Everything is seeded: the same size and seed give the same bytes.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

import msprime
import numpy as np

CONTIG = "chr20"
CONTIG_LENGTH = 64_444_167  # GRCh38 chr20
BUILD = "hg38"
POPULATIONS = ("afr", "eur", "eas")
DEFAULT_SEED = 20_240_605
GENERATION_YEARS = 25
MUTATION_RATE = 2.35e-8  # the model's own estimate (Gutenkunst et al. 2009)
RECOMBINATION_RATE = 1e-8  # 1 cM/Mb, written out as the panel's genetic map
PANEL_VERSION = "1.0.0"
ARRAY_MIN_MAF = 0.05  # arrays genotype common variants
MAP_STEP = 100_000  # one genetic-map point every 100 kb (Beagle interpolates between them)
CHUNK_SITES = 2_000  # sites formatted at a time: bounds memory at demo size


@dataclass(frozen=True)
class PanelSize:
    """One panel shape: who is simulated, where, and how dense the simulated array is."""

    panel_id: str
    name: str
    reference_per_population: tuple[int, int, int]
    target_per_population: int
    start: int  # first hg38 position (1-based) of the simulated segment
    length: int
    array_spacing: int  # at most one array site per this many bases

    @property
    def reference_samples(self) -> int:
        return sum(self.reference_per_population)


SIZES: dict[str, PanelSize] = {
    "ci": PanelSize(
        "sim-ooa-chr20",
        "Simulated out-of-Africa, chr20 (CI size)",
        (100, 100, 100),
        10,
        35_000_001,
        1_000_000,
        2_500,
    ),
    "demo": PanelSize(
        "sim-ooa-chr20-demo",
        "Simulated out-of-Africa, chr20 (demo size)",
        (667, 667, 666),
        50,
        35_000_001,
        10_000_000,
        2_500,
    ),
}


def out_of_africa() -> msprime.Demography:
    """Gutenkunst et al. (2009) three-population model, in generations (25 years each)."""
    t_eu_as = 21_200 / GENERATION_YEARS
    t_ooa = 140_000 / GENERATION_YEARS
    t_growth = 220_000 / GENERATION_YEARS
    r_eu, r_as = 0.004, 0.0055
    demography = msprime.Demography()
    # Active from the start although it is also the ancestral population of a split: it is sampled.
    demography.add_population(
        name="afr", initial_size=12_300, initially_active=True, description="African (YRI-like)"
    )
    demography.add_population(
        name="eur",
        initial_size=1_000 * math.exp(r_eu * t_eu_as),
        growth_rate=r_eu,
        description="European (CEU-like)",
    )
    demography.add_population(
        name="eas",
        initial_size=510 * math.exp(r_as * t_eu_as),
        growth_rate=r_as,
        description="East Asian (CHB-like)",
    )
    demography.add_population(name="ooa", initial_size=2_100, description="out-of-Africa founders")
    demography.set_symmetric_migration_rate(["afr", "eur"], 3e-5)
    demography.set_symmetric_migration_rate(["afr", "eas"], 1.9e-5)
    demography.set_symmetric_migration_rate(["eur", "eas"], 9.6e-5)
    demography.add_population_split(time=t_eu_as, derived=["eur", "eas"], ancestral="ooa")
    demography.add_symmetric_migration_rate_change(
        time=t_eu_as, populations=["afr", "ooa"], rate=25e-5
    )
    demography.add_population_split(time=t_ooa, derived=["ooa"], ancestral="afr")
    demography.add_population_parameters_change(time=t_growth, initial_size=7_300, population="afr")
    return demography


@dataclass(frozen=True)
class Layout:
    """Where a generated panel and its held-out people live under a data directory."""

    root: Path
    panel_id: str

    @property
    def panel_dir(self) -> Path:
        return self.root / "panels" / self.panel_id

    @property
    def heldout_dir(self) -> Path:
        return self.root / "heldout" / self.panel_id

    @property
    def manifest(self) -> Path:
        return self.panel_dir / "panel.json"

    @property
    def target(self) -> Path:
        return self.heldout_dir / f"target.{CONTIG}.vcf.gz"

    @property
    def truth(self) -> Path:
        return self.heldout_dir / f"truth.{CONTIG}.vcf.gz"


def generate(size: str, root: Path, seed: int = DEFAULT_SEED) -> Layout:
    """Simulate and write one panel (and its held-out target and truth) under ``root``.

    Files are written into a temporary sibling directory and moved into place at the end, so a
    panel directory that exists is always complete.
    """
    shape = SIZES[size]
    layout = Layout(root, shape.panel_id)
    staging = Layout(root / ".staging", shape.panel_id)
    shutil.rmtree(staging.root / "panels" / shape.panel_id, ignore_errors=True)
    shutil.rmtree(staging.root / "heldout" / shape.panel_id, ignore_errors=True)
    staging.panel_dir.mkdir(parents=True)
    staging.heldout_dir.mkdir(parents=True)

    ancestry = msprime.sim_ancestry(
        samples={
            pop: n + shape.target_per_population
            for pop, n in zip(POPULATIONS, shape.reference_per_population, strict=True)
        },
        demography=out_of_africa(),
        sequence_length=shape.length,
        recombination_rate=RECOMBINATION_RATE,
        random_seed=seed,
    )
    ts = msprime.sim_mutations(ancestry, rate=MUTATION_RATE, random_seed=seed)
    people = _split_people(ts, shape)
    counts = _write_vcfs(ts, shape, people, staging)
    _write_map(staging.panel_dir / f"{CONTIG}.map", shape)
    _write_samples(staging, people)
    manifest = _manifest(shape, seed, counts)
    staging.manifest.write_text(json.dumps(manifest, indent=2) + "\n")

    for final, staged in (
        (layout.panel_dir, staging.panel_dir),
        (layout.heldout_dir, staging.heldout_dir),
    ):
        shutil.rmtree(final, ignore_errors=True)
        final.parent.mkdir(parents=True, exist_ok=True)
        staged.rename(final)
    return layout


def ensure(size: str, root: Path, seed: int = DEFAULT_SEED) -> Layout:
    """The panel under ``root``, generated first if it is not there yet."""
    layout = Layout(root, SIZES[size].panel_id)
    if not layout.manifest.exists() or not layout.truth.exists():
        return generate(size, root, seed)
    return layout


# ---------------------------------------------------------------------------- people


@dataclass(frozen=True)
class Person:
    name: str
    population: str
    haplotypes: tuple[int, int]  # sample-node indices in the genotype rows
    reference: bool


def _split_people(ts: Any, shape: PanelSize) -> list[Person]:
    """The first individuals of each population form the panel; the rest are held out."""
    people: list[Person] = []
    seen = dict.fromkeys(POPULATIONS, 0)
    sample_index = {int(node): i for i, node in enumerate(ts.samples())}
    names = [p.metadata["name"] for p in ts.populations()]
    for individual in ts.individuals():
        pop = names[ts.node(individual.nodes[0]).population]
        rank = seen[pop]
        seen[pop] += 1
        n_ref = shape.reference_per_population[POPULATIONS.index(pop)]
        reference = rank < n_ref
        label = (
            f"{pop.upper()}{rank + 1:04d}"
            if reference
            else f"TGT_{pop.upper()}{rank - n_ref + 1:03d}"
        )
        first, second = (sample_index[int(n)] for n in individual.nodes)
        people.append(Person(label, pop, (first, second), reference))
    return people


def _write_samples(layout: Layout, people: list[Person]) -> None:
    for directory, reference in ((layout.panel_dir, True), (layout.heldout_dir, False)):
        rows = [f"{p.name}\t{p.population}\n" for p in people if p.reference is reference]
        (directory / "samples.tsv").write_text("sample\tpopulation\n" + "".join(rows))


# ---------------------------------------------------------------------------- VCF writing


def _header(columns: list[str], info: bool, phased_note: str) -> bytes:
    lines = [
        "##fileformat=VCFv4.2",
        "##source=fedimpute-imputation-node simulated out-of-Africa panel (msprime)",
        f"##contig=<ID={CONTIG},length={CONTIG_LENGTH},assembly={BUILD}>",
        f'##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype ({phased_note})">',
    ]
    if info:
        lines += [
            '##INFO=<ID=AC,Number=A,Type=Integer,Description="Alternate allele count in the panel">',
            '##INFO=<ID=AN,Number=1,Type=Integer,Description="Number of alleles in the panel">',
            '##INFO=<ID=AF,Number=A,Type=Float,Description="Alternate allele frequency in the panel">',
        ]
        lines += [
            f'##INFO=<ID=AF_{pop},Number=A,Type=Float,Description="Alternate allele frequency, {pop}">'
            for pop in POPULATIONS
        ]
    fixed = ["#CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO"]
    fixed += ["FORMAT", *columns] if columns else []
    return ("\n".join([*lines, "\t".join(fixed)]) + "\n").encode()


def _genotype_text(haps: Any, phased: bool) -> Any:
    """Rows of haplotype pairs (0/1) as tab-separated ``a|b`` (or sorted ``a/b``) bytes + newline."""
    first, second = haps[:, 0::2], haps[:, 1::2]
    if not phased:
        first, second = np.minimum(first, second), np.maximum(first, second)
    rows, people = first.shape
    text = np.empty((rows, people * 4), dtype=np.uint8)
    text[:, 0::4] = first + ord("0")
    text[:, 1::4] = ord("|") if phased else ord("/")
    text[:, 2::4] = second + ord("0")
    text[:, 3::4] = ord("\t")
    text[:, -1] = ord("\n")
    return text


class _Bgzip:
    """A VCF written through the real ``bgzip`` (so ``tabix`` can index it), indexed on close."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file = path.open("wb")
        self._process = subprocess.Popen(["bgzip", "-c"], stdin=subprocess.PIPE, stdout=self._file)
        assert self._process.stdin is not None
        self.stream: IO[bytes] = self._process.stdin

    def close(self) -> None:
        self.stream.close()
        code = self._process.wait()
        self._file.close()
        if code != 0:
            raise RuntimeError(f"bgzip failed on {self.path} (exit code {code})")
        subprocess.run(["tabix", "-f", "-p", "vcf", str(self.path)], check=True)


@dataclass
class Counts:
    panel_sites: int = 0
    array_sites: int = 0


def _site_chunks(ts: Any) -> Iterator[tuple[list[tuple[int, str, str]], Any]]:
    """Biallelic sites (position, ref, alt) in order, ``CHUNK_SITES`` at a time, with their
    genotype rows (int8, one column per haplotype)."""
    batch: list[tuple[int, str, str]] = []
    rows: list[Any] = []
    for variant in ts.variants(copy=True):
        if len(variant.alleles) != 2 or variant.has_missing_data:
            continue
        ref, alt = variant.alleles
        batch.append((int(variant.site.position), ref, alt))
        rows.append(variant.genotypes.astype(np.int8))
        if len(batch) == CHUNK_SITES:
            yield batch, np.vstack(rows)
            batch, rows = [], []
    if batch:
        yield batch, np.vstack(rows)


def _write_vcfs(ts: Any, shape: PanelSize, people: list[Person], layout: Layout) -> Counts:
    panel_people = [p for p in people if p.reference]
    held_out = [p for p in people if not p.reference]
    panel_cols = np.array([h for p in panel_people for h in p.haplotypes])
    target_cols = np.array([h for p in held_out for h in p.haplotypes])
    pop_cols = {
        pop: np.array([h for p in panel_people if p.population == pop for h in p.haplotypes])
        for pop in POPULATIONS
    }
    files = {
        "panel": _Bgzip(layout.panel_dir / f"{CONTIG}.vcf.gz"),
        "sites": _Bgzip(layout.panel_dir / f"{CONTIG}.sites.vcf.gz"),
        "truth": _Bgzip(layout.truth),
        "target": _Bgzip(layout.target),
    }
    files["panel"].stream.write(_header([p.name for p in panel_people], True, "phased"))
    files["sites"].stream.write(_header([], True, "phased"))
    files["truth"].stream.write(_header([p.name for p in held_out], False, "phased truth"))
    files["target"].stream.write(_header([p.name for p in held_out], False, "unphased, array"))
    counts = Counts()
    last_array = -shape.array_spacing
    for sites, genotypes in _site_chunks(ts):
        panel = genotypes[:, panel_cols]
        ac = panel.sum(axis=1)
        an = panel.shape[1]
        keep = (ac > 0) & (ac < an)
        pop_af = {pop: genotypes[:, cols].mean(axis=1) for pop, cols in pop_cols.items()}
        panel_text = _genotype_text(panel, phased=True)
        truth_text = _genotype_text(genotypes[:, target_cols], phased=True)
        target_text = _genotype_text(genotypes[:, target_cols], phased=False)
        for i, (offset, ref, alt) in enumerate(sites):
            if not keep[i]:
                continue
            pos = shape.start + offset
            af = ac[i] / an
            info = f"AC={ac[i]};AN={an};AF={af:.6g}" + "".join(
                f";AF_{pop}={pop_af[pop][i]:.6g}" for pop in POPULATIONS
            )
            fixed = f"{CONTIG}\t{pos}\t{CONTIG}:{pos}:{ref}:{alt}\t{ref}\t{alt}\t.\tPASS\t"
            files["panel"].stream.write(f"{fixed}{info}\tGT\t".encode() + panel_text[i].tobytes())
            files["sites"].stream.write(f"{fixed}{info}\n".encode())
            files["truth"].stream.write(f"{fixed}.\tGT\t".encode() + truth_text[i].tobytes())
            counts.panel_sites += 1
            if min(af, 1 - af) >= ARRAY_MIN_MAF and pos - last_array >= shape.array_spacing:
                files["target"].stream.write(f"{fixed}.\tGT\t".encode() + target_text[i].tobytes())
                counts.array_sites += 1
                last_array = pos
    for file in files.values():
        file.close()
    return counts


def _write_map(path: Path, shape: PanelSize) -> None:
    """PLINK map (chrom, id, cM, bp) at the simulation's uniform recombination rate."""
    end = shape.start + shape.length - 1
    points = [*range(shape.start, end, MAP_STEP), end]
    cm_per_base = RECOMBINATION_RATE * 100
    path.write_text(
        "".join(f"{CONTIG}\t.\t{(bp - shape.start) * cm_per_base:.6f}\t{bp}\n" for bp in points)
    )


def _manifest(shape: PanelSize, seed: int, counts: Counts) -> dict[str, Any]:
    return {
        "id": shape.panel_id,
        "name": shape.name,
        "version": PANEL_VERSION,
        "build": BUILD,
        "populations": [*POPULATIONS, "all"],
        "samples": shape.reference_samples,
        "chromosomes": [CONTIG.removeprefix("chr")],
        "contigs": {
            CONTIG: {
                "length": CONTIG_LENGTH,
                "start": shape.start,
                "end": shape.start + shape.length - 1,
                "reference": f"{CONTIG}.vcf.gz",
                "sites": f"{CONTIG}.sites.vcf.gz",
                "map": f"{CONTIG}.map",
                "sites_count": counts.panel_sites,
            }
        },
        "simulation": {
            "generator": "msprime",
            "msprime_version": msprime.__version__,
            "model": "out-of-Africa, three populations (Gutenkunst et al. 2009)",
            "seed": seed,
            "mutation_rate": MUTATION_RATE,
            "recombination_rate": RECOMBINATION_RATE,
            "shape": asdict(shape),
            "array_sites": counts.array_sites,
            "array_min_maf": ARRAY_MIN_MAF,
        },
    }
