"""Quality control of one target VCF against the reference panel (the workflow's `qc` step).

Reads the target (bgzip-compressed VCF, one chromosome) and the panel's sites file, and writes
the sites fit for imputation, in the panel's orientation, as a plain VCF with GT only, plus a JSON
report. For each target record, in this order, the first rule that applies decides:

1. duplicate: several records at one position (all of them are dropped: which one is right
   cannot be told);
2. not_in_panel: no panel site at that position;
3. multiallelic: more than one ALT allele (the panel is biallelic);
4. alleles against the panel's REF/ALT:
   - same alleles: kept; swapped REF/ALT: kept, genotypes recoded;
   - complementary alleles (a strand flip, maybe also swapped): flipped to the panel's strand
     (or dropped as strand_flip with ``--strand-flips drop``);
   - strand-ambiguous pairs (A/T, C/G) cannot show a flip in their alleles: their ALT frequency
     is compared with the panel population's, and a disagreement larger than
     ``--af-threshold`` drops them (strand_ambiguous_af_mismatch);
   - anything else: allele_mismatch;
5. high_missing_rate: more than ``--max-missing`` of the genotypes missing;
6. monomorphic: one allele only among the called genotypes.

Input problems a user can fix (wrong build or chromosome, unsorted, not bgzip-compressed, no
samples, no overlap with the panel) end the step with exit code 2 and one ``ERROR:`` line that
says what is wrong and what to do. Only the Python standard library is used, so the step runs in
any image with ``python3``. The script is included into the CWL tool by ``$include``: it must not
contain a CWL parameter reference (a dollar sign followed by a parenthesis or brace).
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

# Chromosome lengths that tell the build from a ##contig line (GRCh37 = hg19, GRCh38 = hg38).
LENGTHS = {
    "hg19": {
        "1": 249250621, "2": 243199373, "3": 198022430, "4": 191154276, "5": 180915260,
        "6": 171115067, "7": 159138663, "8": 146364022, "9": 141213431, "10": 135534747,
        "11": 135006516, "12": 133851895, "13": 115169878, "14": 107349540, "15": 102531392,
        "16": 90354753, "17": 81195210, "18": 78077248, "19": 59128983, "20": 63025520,
        "21": 48129895, "22": 51304566, "X": 155270560,
    },
    "hg38": {
        "1": 248956422, "2": 242193529, "3": 198295559, "4": 190214555, "5": 181538259,
        "6": 170805979, "7": 159345973, "8": 145138636, "9": 138394717, "10": 133797422,
        "11": 135086622, "12": 133275309, "13": 114364328, "14": 107043718, "15": 101991189,
        "16": 90338345, "17": 83257441, "18": 80373285, "19": 58617616, "20": 64444167,
        "21": 46709983, "22": 50818468, "X": 156040895,
    },
}  # fmt: skip
COMPLEMENT = {"A": "T", "T": "A", "C": "G", "G": "C"}
DROP_REASONS = (
    "duplicate",
    "not_in_panel",
    "multiallelic",
    "allele_mismatch",
    "strand_flip",
    "strand_ambiguous_af_mismatch",
    "high_missing_rate",
    "monomorphic",
)
MAX_LINE = 64 * 1024 * 1024  # a longer line is not a VCF record we can use
MAX_HEADER_LINES = 100_000
CONTIG_LINE = re.compile(r"^##contig=<(.*)>\s*$")
FIXED_COLUMNS = ["#CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO"]
# Every step names its files after the prefix: a plain name, never a path.
OUTPUT_PREFIX = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


class InputError(Exception):
    """A problem with the user's input, told as one line that says what to do about it."""


# ---------------------------------------------------------------------------- the panel


@dataclass(frozen=True)
class PanelSite:
    ref: str
    alt: str
    af: float  # ALT frequency in the chosen population


@dataclass
class Panel:
    panel_id: str
    build: str
    contig: str
    length: int
    # position -> (REF, ALT, INFO) as read: a target holds a few thousand of the panel's hundreds
    # of thousands of sites, so INFO is parsed only for the sites a target has (site()).
    sites: dict[int, tuple[str, str, str]]
    info_key: str  # AF, or AF_<population>
    start: int = 0
    end: int = 0

    def site(self, pos: int) -> PanelSite | None:
        raw = self.sites.get(pos)
        if raw is None:
            return None
        ref, alt, info = raw
        fields = dict(item.split("=", 1) for item in info.split(";") if "=" in item)
        return PanelSite(ref, alt, float(fields.get(self.info_key, "nan")))


def bare(chrom: str) -> str:
    name = chrom.removeprefix("chr")
    return "X" if name == "23" else name


def load_panel(panel_dir: Path, build: str, population: str, chromosome: str) -> Panel:
    """The panel's sites on ``chromosome`` with the population's ALT frequencies."""
    manifest_path = panel_dir / "panel.json"
    if not manifest_path.is_file():
        raise InputError(f"the panel directory {panel_dir} has no panel.json: it is not a panel")
    manifest = json.loads(manifest_path.read_text())
    panel_id = manifest.get("id", panel_dir.name)
    if manifest.get("build") != build:
        raise InputError(
            f"build {build} was requested but panel {panel_id} is on {manifest.get('build')}: "
            f"lift the target over to {manifest.get('build')} or choose a {build} panel"
        )
    populations = manifest.get("populations", ["all"])
    if population not in populations:
        raise InputError(
            f"population {population!r} is not one of panel {panel_id}'s populations "
            f"({', '.join(populations)})"
        )
    contigs: dict[str, Any] = manifest.get("contigs", {})
    contig = next((c for c in contigs if bare(c) == bare(chromosome)), None)
    if contig is None:
        covered = ", ".join(sorted(contigs))
        raise InputError(
            f"the target is on chromosome {chromosome} but panel {panel_id} ({build}) covers "
            f"{covered} only: choose a panel that covers {chromosome}"
        )
    for needed in (f"{contig}.vcf.gz", f"{contig}.map", f"{contig}.sites.vcf.gz"):
        if not (panel_dir / needed).is_file():
            raise InputError(f"panel {panel_id} lacks {needed}: the panel directory is incomplete")
    info_key = "AF" if population == "all" else f"AF_{population}"
    sites: dict[int, tuple[str, str, str]] = {}
    with gzip.open(panel_dir / f"{contig}.sites.vcf.gz", "rt") as stream:
        for line in stream:
            if line.startswith("#"):
                continue
            fields = line.split("\t", 8)
            sites[int(fields[1])] = (fields[3], fields[4], fields[7])
    entry = contigs[contig]
    return Panel(
        panel_id,
        build,
        contig,
        int(entry.get("length", 0)),
        sites,
        info_key,
        int(entry.get("start", min(sites, default=0))),
        int(entry.get("end", max(sites, default=0))),
    )


# ---------------------------------------------------------------------------- the target


@dataclass
class Header:
    lines: list[str]
    samples: list[str]
    contigs: dict[str, int] = field(default_factory=dict)


def open_target(path: Path, label: str) -> IO[str]:
    """The target as text, after checking that it is bgzip-compressed (so it can be indexed)."""
    with path.open("rb") as raw:
        head = raw.read(18)
    if head[:2] != b"\x1f\x8b":
        kind = "a plain-text VCF" if head.startswith(b"##fileformat=VCF") else "not a VCF"
        hint = (
            f"compress it with `bgzip {label}` and index it with `tabix -p vcf {label}.gz`"
            if kind == "a plain-text VCF"
            else "give a bgzip-compressed VCF (.vcf.gz)"
        )
        raise InputError(
            f"{label} is {kind}, not bgzip-compressed, so it cannot be indexed: {hint}"
        )
    is_bgzf = len(head) >= 16 and head[3] & 4 and head[12:14] == b"BC"
    if not is_bgzf:
        raise InputError(
            f"{label} is compressed with plain gzip, not bgzip, so it cannot be indexed: "
            f"recompress it with `zcat {label} | bgzip > fixed.vcf.gz` and index it with "
            "`tabix -p vcf fixed.vcf.gz`"
        )
    return gzip.open(path, "rt", encoding="utf-8", errors="replace", newline="\n")


def read_line(stream: IO[str], label: str) -> str:
    line = stream.readline(MAX_LINE)
    if len(line) == MAX_LINE and not line.endswith("\n"):
        raise InputError(f"{label} has a line longer than {MAX_LINE} characters: it is not a VCF")
    return line


def read_header(stream: IO[str], label: str) -> Header:
    lines: list[str] = []
    contigs: dict[str, int] = {}
    for _ in range(MAX_HEADER_LINES):
        try:
            line = read_line(stream, label)
        except (OSError, EOFError) as exc:
            raise InputError(f"{label} is not a readable bgzip file ({exc})") from None
        if not line.startswith("#"):
            break
        if line.startswith("#CHROM"):
            columns = line.rstrip("\r\n").split("\t")
            if columns[:8] != FIXED_COLUMNS:
                break
            return Header(lines, columns[9:], contigs)
        lines.append(line)
        if match := CONTIG_LINE.match(line):
            attrs = dict(part.split("=", 1) for part in match.group(1).split(",") if "=" in part)
            if "ID" in attrs and attrs.get("length", "").isdigit():
                contigs[attrs["ID"]] = int(attrs["length"])
    raise InputError(f"{label} has no valid #CHROM header line: it is not a VCF")


def build_of_length(chrom: str, length: int) -> str | None:
    return next((b for b, table in LENGTHS.items() if table.get(bare(chrom)) == length), None)


def check_contig_header(header: Header, chrom: str, panel: Panel, label: str) -> None:
    """The target's own ##contig length for its chromosome must be the panel's."""
    length = next((n for c, n in header.contigs.items() if bare(c) == bare(chrom)), None)
    if length is None or panel.length == 0 or length == panel.length:
        return
    target_build = build_of_length(chrom, length) or "an unknown build"
    raise InputError(
        f"{label} is on {target_build} (##contig {chrom} length {length:,}) but panel "
        f"{panel.panel_id} is on {panel.build} ({panel.contig} length {panel.length:,}): "
        f"lift the target over to {panel.build} or choose a {target_build} panel"
    )


# ---------------------------------------------------------------------------- per-site rules


@dataclass(frozen=True)
class Record:
    pos: int
    fields: list[str]

    @property
    def ref(self) -> str:
        return self.fields[3].upper()

    @property
    def alt(self) -> str:
        return self.fields[4].upper()


def genotypes(fields: list[str]) -> list[tuple[str, str, str] | None]:
    """(first allele, separator, second allele) per sample, None where missing or not 0/1."""
    calls: list[tuple[str, str, str] | None] = []
    for sample in fields[9:]:
        gt = sample.split(":", 1)[0]
        sep = "|" if "|" in gt else "/"
        parts = gt.split(sep)
        if len(parts) == 2 and parts[0] in ("0", "1") and parts[1] in ("0", "1"):
            calls.append((parts[0], sep, parts[1]))
        else:
            calls.append(None)
    return calls


def classify_alleles(
    ref: str, alt: str, site: PanelSite, alt_freq: float | None, af_threshold: float
) -> tuple[str, bool]:
    """(outcome, swapped): outcome is match, flip or a drop reason; swapped means REF/ALT are
    the panel's ALT/REF."""
    if (ref, alt) == (site.ref, site.alt):
        outcome, swapped = "match", False
    elif (ref, alt) == (site.alt, site.ref):
        outcome, swapped = "match", True
    else:
        flipped = (COMPLEMENT.get(ref, "?"), COMPLEMENT.get(alt, "?"))
        if flipped == (site.ref, site.alt):
            return "flip", False
        if flipped == (site.alt, site.ref):
            return "flip", True
        return "allele_mismatch", False
    if COMPLEMENT.get(site.ref) == site.alt and alt_freq is not None and site.af == site.af:
        panel_orientation = 1 - alt_freq if swapped else alt_freq
        if abs(panel_orientation - site.af) > af_threshold:
            return "strand_ambiguous_af_mismatch", swapped
    return outcome, swapped


@dataclass
class Options:
    max_missing: float = 0.1
    af_threshold: float = 0.2
    drop_strand_flips: bool = False


@dataclass
class Tally:
    sites_in: int = 0
    kept: int = 0
    flipped: int = 0
    swapped: int = 0
    af_outliers: int = 0
    dropped: dict[str, int] = field(default_factory=lambda: dict.fromkeys(DROP_REASONS, 0))


def decide(record: Record, panel: Panel, options: Options, tally: Tally) -> str | None:
    """The record as a line of the QC'd VCF (panel's contig and alleles, GT only), or None."""
    site = panel.site(record.pos)
    if site is None:
        tally.dropped["not_in_panel"] += 1
        return None
    if "," in record.alt:
        tally.dropped["multiallelic"] += 1
        return None
    calls = genotypes(record.fields)
    called = [c for c in calls if c is not None]
    alt_count = sum((a == "1") + (b == "1") for a, _, b in called)
    alt_freq = alt_count / (2 * len(called)) if called else None
    outcome, swapped = classify_alleles(
        record.ref, record.alt, site, alt_freq, options.af_threshold
    )
    if outcome == "flip" and options.drop_strand_flips:
        outcome = "strand_flip"
    if outcome not in ("match", "flip"):
        tally.dropped[outcome] += 1
        return None
    if not calls or (len(calls) - len(called)) / len(calls) > options.max_missing:
        tally.dropped["high_missing_rate"] += 1
        return None
    if alt_count in (0, 2 * len(called)):
        tally.dropped["monomorphic"] += 1
        return None
    tally.kept += 1
    tally.flipped += outcome == "flip"
    tally.swapped += swapped
    panel_alt_freq = (1 - alt_freq if swapped else alt_freq) if alt_freq is not None else None
    if panel_alt_freq is not None and abs(panel_alt_freq - site.af) > options.af_threshold:
        tally.af_outliers += 1
    recode = {"0": "1", "1": "0"} if swapped else {"0": "0", "1": "1"}
    gts = [f"{recode[c[0]]}{c[1]}{recode[c[2]]}" if c else "./." for c in calls]
    fixed = [panel.contig, str(record.pos), record.fields[2], site.ref, site.alt, ".", "PASS", "."]
    return "\t".join([*fixed, "GT", *gts]) + "\n"


# ---------------------------------------------------------------------------- the whole file


def records(stream: IO[str], first: str, label: str) -> Iterator[Record]:
    """Data lines as records, checking that they are on one chromosome and sorted."""
    line = first
    chrom: str | None = None
    last = 0
    number = 0
    while line:
        number += 1
        fields = line.rstrip("\r\n").split("\t")
        if len(fields) < 8 or not fields[1].isdigit():
            raise InputError(f"{label}: data line {number} is not a VCF record")
        pos = int(fields[1])
        if chrom is None:
            chrom = fields[0]
        elif fields[0] != chrom:
            raise InputError(
                f"{label} has records on more than one chromosome ({chrom} and {fields[0]}): "
                "give one VCF per chromosome (`bcftools view -r <chrom>` splits it)"
            )
        if pos < last:
            raise InputError(
                f"{label} is not sorted by position ({chrom}:{pos:,} comes after {chrom}:{last:,} "
                f"on data line {number}), so it cannot be indexed: sort it with "
                f"`bcftools sort -Oz -o sorted.vcf.gz {label}` and index it with `tabix -p vcf`"
            )
        last = pos
        yield Record(pos, fields)
        line = read_line(stream, label)


def grouped(stream: Iterator[Record]) -> Iterator[list[Record]]:
    """Records at the same position together (the file is sorted, so they are adjacent)."""
    group: list[Record] = []
    for record in stream:
        if group and record.pos != group[0].pos:
            yield group
            group = []
        group.append(record)
    if group:
        yield group


@dataclass
class QcResult:
    chromosome: str
    report: dict[str, Any]


def run_qc(
    target: Path,
    label: str,
    panel_dir: Path,
    build: str,
    population: str,
    min_samples: int,
    options: Options,
    out: IO[str],
) -> QcResult:
    """QC ``target`` into ``out``; raises InputError for input the user must fix."""
    with open_target(target, label) as stream:
        header = read_header(stream, label)
        min_samples = max(min_samples, 1)  # Beagle has nothing to impute without a sample
        if len(header.samples) < min_samples:
            raise InputError(
                f"{label} has {len(header.samples)} sample(s); imputation needs at least "
                f"{min_samples} (Beagle phases and imputes the samples' genotypes): "
                + ("give a VCF with genotype columns" if not header.samples else "add samples")
            )
        first = read_line(stream, label)
        if not first:
            raise InputError(f"{label} has no variant records")
        chrom = first.split("\t", 1)[0]
        panel = load_panel(panel_dir, build, population, chrom)
        check_contig_header(header, chrom, panel, label)
        out.write(
            "##fileformat=VCFv4.2\n"
            f"##contig=<ID={panel.contig},length={panel.length},assembly={panel.build}>\n"
            '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">\n'
            f"##fedimpute_qc=<panel={panel.panel_id},population={population}>\n"
            + "\t".join([*FIXED_COLUMNS, "FORMAT", *header.samples])
            + "\n"
        )
        tally = Tally()
        first_pos = last_pos = 0
        for group in grouped(records(stream, first, label)):
            tally.sites_in += len(group)
            first_pos = first_pos or group[0].pos
            last_pos = group[0].pos
            if len(group) > 1:
                tally.dropped["duplicate"] += len(group)
                continue
            if line := decide(group[0], panel, options, tally):
                out.write(line)
    if tally.kept == 0:
        where = (
            f"{tally.sites_in:,} sites of {label} ({chrom}:{first_pos:,}-{last_pos:,}) against "
            f"panel {panel.panel_id} ({panel.contig}:{panel.start:,}-{panel.end:,}, {panel.build})"
        )
        if tally.dropped["not_in_panel"] == tally.sites_in:
            raise InputError(
                f"no overlap with the panel: none of the {where} is a panel site. Check the "
                "build, the chromosome and the region"
            )
        raise InputError(
            f"no site passed QC: {where}; dropped: "
            + ", ".join(f"{k} {v:,}" for k, v in tally.dropped.items() if v)
            + ". Check the alleles' strand and the genotype calls"
        )
    report = {
        "file": label,
        "chromosome": panel.contig,
        "panel": panel.panel_id,
        "build": panel.build,
        "population": population,
        "samples": len(header.samples),
        "sites_in": tally.sites_in,
        "kept": tally.kept,
        "flipped": tally.flipped,
        "swapped": tally.swapped,
        "dropped": tally.dropped,
        "dropped_total": sum(tally.dropped.values()),
        "af_check": {
            "population": population,
            "threshold": options.af_threshold,
            "outliers_kept": tally.af_outliers,
        },
        "settings": {
            "max_missing": options.max_missing,
            "strand_flips": "drop" if options.drop_strand_flips else "flip",
            "min_samples": min_samples,
        },
    }
    return QcResult(panel.contig, report)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", type=Path, required=True)
    parser.add_argument("--label", help="the target's name in messages (default: its file name)")
    parser.add_argument("--panel", type=Path, required=True)
    parser.add_argument("--build", required=True)
    parser.add_argument("--population", default="all")
    parser.add_argument("--prefix", required=True)
    parser.add_argument("--max-missing", type=float, default=0.1)
    parser.add_argument("--af-threshold", type=float, default=0.2)
    parser.add_argument("--min-samples", type=int, default=1)
    parser.add_argument("--strand-flips", choices=["flip", "drop"], default="flip")
    args = parser.parse_args(argv)
    label = args.label or args.target.name
    if not OUTPUT_PREFIX.match(args.prefix):
        print(
            f"ERROR: output_prefix {args.prefix!r} is not a plain file name: use letters, digits, "
            "'.', '_' and '-' (at most 100, starting with a letter or digit)",
            file=sys.stderr,
        )
        return 2
    options = Options(args.max_missing, args.af_threshold, args.strand_flips == "drop")
    staging = Path(f"{args.prefix}.qc.partial")
    try:
        with staging.open("w") as out:
            result = run_qc(
                args.target, label, args.panel, args.build, args.population,
                args.min_samples, options, out,
            )  # fmt: skip
    except InputError as exc:
        staging.unlink(missing_ok=True)
        print(f"ERROR: {exc}", file=sys.stderr)
        return 2
    stem = f"{args.prefix}.{result.chromosome}"
    staging.rename(f"{stem}.qc.vcf")
    Path(f"{stem}.qc.json").write_text(json.dumps(result.report, indent=2) + "\n")
    Path("chromosome.txt").write_text(result.chromosome)
    print(
        f"QC {label}: {result.report['sites_in']} sites in, {result.report['kept']} kept, "
        f"{result.report['flipped']} flipped, {result.report['dropped_total']} dropped",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
