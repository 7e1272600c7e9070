"""Realistic synthetic genotype VCFs for the tests, the benchmarks and the demo.

``VcfSpec`` describes a file (samples, variants, build with the right ``##contig`` lengths, phased
or not) and every defect the validator must catch; :func:`write_vcf` writes it bgzipped (our own
BGZF writer, compressing blocks on a thread pool, so a multi-GiB benchmark file takes seconds,
not minutes), plain-gzipped or uncompressed.

Genotypes are drawn at random per variant from a pool of pre-drawn sample rows (each with its own
allele frequency), so files compress about as well as real array data and generation costs a
string join per line. Command line::

    python -m file_manager.testdata out.vcf.gz --samples 1000 --size-gib 1 --build hg38
"""

from __future__ import annotations

import argparse
import gzip
import random
import struct
import zlib
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Literal

from file_manager.vcf.builds import ASSEMBLY_NAMES, LENGTHS, Build

BGZF_EOF = bytes.fromhex("1f8b08040000000000ff0600424302001b0003000000000000000000")
BGZF_BLOCK_DATA = 65280  # what bgzip puts in one block (fits the 64 KiB block limit)
Compression = Literal["bgzf", "gzip", "none"]


@dataclass
class VcfSpec:
    samples: int = 30
    variants: int = 200
    build: Build = "hg38"
    chromosome: str = "20"  # without prefix; the prefix follows the build unless chr_prefix is set
    chr_prefix: bool | None = None
    phased: bool = True
    seed: int = 1
    contig_lines: bool = True
    indel_every: int = 0  # every n-th variant is an indel (0: none)
    multiallelic_every: int = 0
    non_acgt_every: int = 0
    duplicate_position_every: int = 0
    # Defects (each one makes the file invalid, or a header/format fault)
    duplicate_sample: bool = False
    second_chromosome: str | None = None  # the last variant moves to this chromosome
    unsorted: bool = False
    ref_equals_alt: bool = False
    missing_fileformat: bool = False
    missing_chrom_line: bool = False
    no_samples: bool = False
    too_few_columns: bool = False  # one record without sample columns
    space_delimited: bool = False  # one record separated by spaces
    extra_header_lines: list[str] = field(default_factory=list)

    @property
    def contig(self) -> str:
        prefixed = self.build == "hg38" if self.chr_prefix is None else self.chr_prefix
        return f"chr{self.chromosome}" if prefixed else self.chromosome

    @property
    def chromosome_length(self) -> int:
        return LENGTHS[self.build].get(self.chromosome, 16_569)


_BASES = "ACGT"


def sample_names(spec: VcfSpec) -> list[str]:
    names = [f"SAMPLE{i:06d}" for i in range(1, spec.samples + 1)]
    if spec.duplicate_sample and len(names) >= 2:
        names[-1] = names[0]
    return names


def header_lines(spec: VcfSpec) -> list[str]:
    lines = [] if spec.missing_fileformat else ["##fileformat=VCFv4.2"]
    lines.append(f"##source=fedimpute-testdata seed={spec.seed}")
    if spec.contig_lines:
        prefix = "chr" if spec.contig.startswith("chr") else ""
        for name, length in LENGTHS[spec.build].items():
            lines.append(f"##contig=<ID={prefix}{name},length={length}>")
        lines.append(f"##reference={ASSEMBLY_NAMES[spec.build]}")
    lines.append('##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">')
    lines.extend(spec.extra_header_lines)
    if not spec.missing_chrom_line:
        columns = ["#CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO"]
        if not spec.no_samples:
            columns += ["FORMAT", *sample_names(spec)]
        lines.append("\t".join(columns))
    return lines


def _genotype_pool(spec: VcfSpec, rng: random.Random, size: int = 64) -> list[str]:
    sep = "|" if spec.phased else "/"
    pool = []
    for _ in range(size):
        freq = rng.uniform(0.01, 0.5)
        calls = [
            f"{int(rng.random() < freq)}{sep}{int(rng.random() < freq)}"
            for _ in range(spec.samples)
        ]
        pool.append("\t".join(calls))
    return pool


def _alleles(rng: random.Random, index: int, spec: VcfSpec) -> tuple[str, str]:
    ref = rng.choice(_BASES)
    alt = rng.choice(_BASES.replace(ref, ""))
    n = index + 1
    if spec.indel_every and n % spec.indel_every == 0:
        return ref, ref + rng.choice(_BASES)
    if spec.multiallelic_every and n % spec.multiallelic_every == 0:
        others = _BASES.replace(ref, "")
        return ref, f"{others[0]},{others[1]}"
    if spec.non_acgt_every and n % spec.non_acgt_every == 0:
        return "N", alt
    return ref, alt


def record_lines(spec: VcfSpec) -> Iterator[str]:
    """The data lines of ``spec``, defects included."""
    rng = random.Random(spec.seed)  # noqa: S311 (test data, not secrets)
    pool = _genotype_pool(spec, rng)
    start = 60_000
    step = max(1, (spec.chromosome_length - start - 10_000) // max(spec.variants, 1))
    pos = start
    for i in range(spec.variants):
        repeat = spec.duplicate_position_every and (i + 1) % spec.duplicate_position_every == 0
        if not repeat:
            pos += rng.randint(1, 2 * step - 1) if step > 1 else 1
        ref, alt = _alleles(rng, i, spec)
        chrom = spec.contig
        record_pos = pos
        last, middle = i == spec.variants - 1, i == spec.variants // 2
        if spec.second_chromosome and last:
            prefix = "chr" if chrom.startswith("chr") else ""
            chrom = prefix + spec.second_chromosome
        if spec.unsorted and middle:
            record_pos = max(1, pos - 2 * step - 5)
            pos = record_pos
        if spec.ref_equals_alt and middle:
            alt = ref
        fixed = f"{chrom}\t{record_pos}\trs{1_000_000 + i}\t{ref}\t{alt}\t.\tPASS\t."
        if spec.no_samples or (spec.too_few_columns and middle):
            yield fixed
        elif spec.space_delimited and middle:
            yield fixed.replace("\t", " ") + " GT " + pool[0].replace("\t", " ")
        else:
            yield f"{fixed}\tGT\t{rng.choice(pool)}"


def vcf_text_blocks(spec: VcfSpec, block_size: int = BGZF_BLOCK_DATA) -> Iterator[bytes]:
    """The whole VCF as bytes, in pieces of about ``block_size``."""
    buffer: list[bytes] = []
    held = 0
    for line in _all_lines(spec):
        data = line.encode() + b"\n"
        buffer.append(data)
        held += len(data)
        if held >= block_size:
            joined = b"".join(buffer)
            cut = len(joined) - len(joined) % block_size
            for offset in range(0, cut, block_size):
                yield joined[offset : offset + block_size]
            buffer, held = [joined[cut:]], len(joined) - cut
    if held:
        yield b"".join(buffer)


def _all_lines(spec: VcfSpec) -> Iterator[str]:
    yield from header_lines(spec)
    yield from record_lines(spec)


def bgzf_block(data: bytes, level: int = 6) -> bytes:
    """One BGZF block (a gzip member with the ``BC`` extra field giving its size)."""
    compressor = zlib.compressobj(level, zlib.DEFLATED, -15)
    deflated = compressor.compress(data) + compressor.flush()
    bsize = len(deflated) + 25  # header 18 + trailer 8 - 1
    header = b"\x1f\x8b\x08\x04\x00\x00\x00\x00\x00\xff\x06\x00BC\x02\x00" + struct.pack(
        "<H", bsize
    )
    return header + deflated + struct.pack("<II", zlib.crc32(data), len(data))


def bgzf_blocks(
    pieces: Iterable[bytes], *, level: int = 6, threads: int = 2, eof: bool = True
) -> Iterator[bytes]:
    """Compress ``pieces`` (each at most 65280 bytes) to BGZF blocks, in order, on threads."""
    with ThreadPoolExecutor(max_workers=threads) as pool:
        batch: list[bytes] = []
        for piece in pieces:
            batch.append(piece)
            if len(batch) >= 64 * threads:
                yield from pool.map(bgzf_block, batch, [level] * len(batch))
                batch = []
        yield from pool.map(bgzf_block, batch, [level] * len(batch))
    if eof:
        yield BGZF_EOF


def write_vcf(
    path: Path,
    spec: VcfSpec,
    *,
    compression: Compression = "bgzf",
    level: int = 6,
    threads: int = 2,
) -> Path:
    """Write ``spec`` to ``path``; returns ``path``."""
    with open(path, "wb") as out:
        _write(out, vcf_text_blocks(spec), compression, level, threads)
    return path


def vcf_bytes(spec: VcfSpec, compression: Compression = "bgzf") -> bytes:
    return b"".join(_encode(vcf_text_blocks(spec), compression, 6, 1))


def _encode(
    pieces: Iterable[bytes], compression: Compression, level: int, threads: int
) -> Iterator[bytes]:
    if compression == "bgzf":
        yield from bgzf_blocks(pieces, level=level, threads=threads)
    elif compression == "gzip":
        yield gzip.compress(b"".join(pieces), compresslevel=level)
    else:
        yield from pieces


def _write(
    out: BinaryIO, pieces: Iterable[bytes], compression: Compression, level: int, threads: int
) -> None:
    for chunk in _encode(pieces, compression, level, threads):
        out.write(chunk)


def bgzf_bomb(decompressed_bytes: int) -> bytes:
    """A valid BGZF file whose one VCF header line is followed by ``decompressed_bytes`` of a
    repeated record: tiny on disk, huge once inflated (a compression bomb)."""
    head = b"##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tS1\n"
    line = b"20\t100\t.\tA\tC\t.\tPASS\t.\tGT\t0|1\n"
    block = (line * (BGZF_BLOCK_DATA // len(line)))[:BGZF_BLOCK_DATA]
    compressed = bgzf_block(block, level=9)
    count = max(1, decompressed_bytes // len(block))
    return bgzf_block(head) + compressed * count + BGZF_EOF


def write_sized_vcf(
    path: Path, target_bytes: int, spec: VcfSpec, *, level: int = 1, threads: int = 2
) -> VcfSpec:
    """Write a bgzipped VCF of about ``target_bytes`` (for benchmarks): estimates the variant
    count from a small sample of the same spec, then writes the whole file."""
    probe = VcfSpec(**{**spec.__dict__, "variants": 2000})
    probe_size = sum(len(b) for b in bgzf_blocks(vcf_text_blocks(probe), level=level))
    header_size = sum(
        len(b) for b in bgzf_blocks(vcf_text_blocks(VcfSpec(**{**spec.__dict__, "variants": 0})))
    )
    per_variant = max(1.0, (probe_size - header_size) / 2000)
    variants = max(1, int((target_bytes - header_size) / per_variant))
    sized = VcfSpec(**{**spec.__dict__, "variants": variants})
    write_vcf(path, sized, level=level, threads=threads)
    return sized


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write a synthetic bgzipped VCF.")
    parser.add_argument("path", type=Path)
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--variants", type=int, default=10_000)
    parser.add_argument("--size-gib", type=float, help="aim for this compressed size instead")
    parser.add_argument("--build", choices=["hg19", "hg38"], default="hg38")
    parser.add_argument("--chromosome", default="20")
    parser.add_argument("--unphased", action="store_true")
    parser.add_argument("--level", type=int, default=6)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    spec = VcfSpec(
        samples=args.samples,
        variants=args.variants,
        build=args.build,
        chromosome=args.chromosome,
        phased=not args.unphased,
        seed=args.seed,
    )
    if args.size_gib:
        spec = write_sized_vcf(args.path, int(args.size_gib * 1024**3), spec, level=args.level)
    else:
        write_vcf(args.path, spec, level=args.level)
    print(f"{args.path}: {spec.samples} samples, {spec.variants} variants, {spec.build}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
