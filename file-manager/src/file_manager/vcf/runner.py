"""The validator as a child process: ``python -m file_manager.vcf.runner`` reads a JSON job on
stdin (``path``, ``index_path``, ``declared_build``, ``limits``) and prints the report as JSON.

A child process because hostile input must not cost the service: the parent caps its address
space and CPU time (``resource`` limits) and kills it after a wall-clock timeout, and htslib's C
code cannot take the service down with it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from file_manager.vcf.validator import Limits, validate


def main() -> int:
    job = json.load(sys.stdin)
    report = validate(
        Path(job["path"]),
        declared_build=job.get("declared_build"),
        limits=Limits(**job.get("limits", {})),
        index_path=Path(job["index_path"]) if job.get("index_path") else None,
    )
    json.dump(report.as_dict(), sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
