"""Target VCFs for the node's tests, made from the simulated held-out target.

`Target.read(path)` loads the generated target; its methods return changed copies with known
defects (strand flips, allele mismatches, duplicates, another build or chromosome, ...), and
`write()` writes one through the real bgzip (or plain gzip / plain text, to test those).
"""

from __future__ import annotations

import gzip
import random
import subprocess
from dataclasses import dataclass, replace
from pathlib import Path

COMPLEMENT = {"A": "T", "T": "A", "C": "G", "G": "C"}


@dataclass(frozen=True)
class Target:
    header: list[str]  # ## lines and the #CHROM line
    records: list[list[str]]

    @classmethod
    def read(cls, path: Path) -> Target:
        header: list[str] = []
        records: list[list[str]] = []
        with gzip.open(path, "rt") as stream:
            for line in stream:
                if line.startswith("#"):
                    header.append(line.rstrip("\n"))
                else:
                    records.append(line.rstrip("\n").split("\t"))
        return cls(header, records)

    def text(self) -> str:
        return "".join(f"{line}\n" for line in self.header) + "".join(
            "\t".join(r) + "\n" for r in self.records
        )

    def write(self, path: Path, compression: str = "bgzip") -> Path:
        data = self.text().encode()
        if compression == "bgzip":
            path.write_bytes(
                subprocess.run(["bgzip", "-c"], input=data, capture_output=True, check=True).stdout
            )
        elif compression == "gzip":
            path.write_bytes(gzip.compress(data))
        else:
            path.write_bytes(data)
        return path

    # ------------------------------------------------------------------ defects

    def usable(self, rng: random.Random, count: int, taken: set[int]) -> list[int]:
        """Indexes of records that QC keeps as they are (non-ambiguous SNP, both alleles seen,
        nothing missing), not in ``taken``."""
        candidates = [
            i
            for i, r in enumerate(self.records)
            if i not in taken
            and COMPLEMENT.get(r[3]) != r[4]
            and any("1" in g for g in r[9:])
            and any("0" in g for g in r[9:])
            and not any("." in g for g in r[9:])
        ]
        chosen = rng.sample(candidates, count)
        taken.update(chosen)
        return chosen

    def with_errors(self, flips: int, mismatches: int, duplicates: int, seed: int = 7) -> Target:
        """Strand flips (both alleles complemented), allele mismatches (ALT replaced by a base
        that is neither allele nor a complement's swap) and duplicated records, at distinct
        records that QC would otherwise keep."""
        rng = random.Random(seed)
        records = [list(r) for r in self.records]
        taken: set[int] = set()
        for i in self.usable(rng, flips, taken):
            records[i][3], records[i][4] = COMPLEMENT[records[i][3]], COMPLEMENT[records[i][4]]
        for i in self.usable(rng, mismatches, taken):
            ref, alt = records[i][3], records[i][4]
            records[i][4] = next(b for b in "ACGT" if b not in (ref, alt))
        duplicated = set(self.usable(rng, duplicates, taken))
        out: list[list[str]] = []
        for i, record in enumerate(records):
            out.append(record)
            if i in duplicated:
                out.append(list(record))
        return replace(self, records=out)

    def renamed(self, chrom: str, length: int | None = None) -> Target:
        """Every record moved to ``chrom``; the ##contig line too (with ``length`` if given)."""
        header = []
        for line in self.header:
            if line.startswith("##contig="):
                size = length if length is not None else int(line.split("length=")[1].split(",")[0])
                line = f"##contig=<ID={chrom},length={size}>"
            header.append(line)
        return replace(self, header=header, records=[[chrom, *r[1:]] for r in self.records])

    def shifted(self, offset: int) -> Target:
        return replace(
            self, records=[[r[0], str(int(r[1]) + offset), *r[2:]] for r in self.records]
        )

    def unsorted(self) -> Target:
        records = list(self.records)
        records[10], records[20] = records[20], records[10]
        return replace(self, records=records)

    def samples(self, count: int) -> Target:
        """Only the first ``count`` samples (0: a sites-only VCF without FORMAT)."""
        keep = 9 + count if count else 8
        header = [*self.header[:-1], "\t".join(self.header[-1].split("\t")[:keep])]
        return replace(self, header=header, records=[r[:keep] for r in self.records])
