"""Upload benchmark: synthetic bgzipped VCFs of 1 and 5 GiB uploaded simple (raw body) and with
tus (tuspy), against a plain ``cp`` of the same file on the same disk; peak memory of file-manager
(and of the gateway when its pid is given); validation speed in variants per second against
``bcftools view -H file | wc -l``; download throughput with a byte-for-byte check.

Direct to a file-manager this script starts itself (its own database, storage and token issuer):

    .venv/bin/python bench/upload.py --sizes-gib 1 5

Through a running fleet (the gateway strips /api):

    .venv/bin/python bench/upload.py --base-url http://127.0.0.1:8000/api --token "$TOKEN" \\
        --fm-pid "$(pgrep -f 'file_manager serve')" --gateway-pid "$(pgrep -f 'api_gateway serve')"

Figures go to docs/benchmarks-upload.md (``--out``) with the command that produced them.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import secrets
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import httpx
import psutil
from memory import PeakRss  # bench/memory.py (the scripts run from bench/)
from tusclient import client as tus_client

from file_manager.testdata import VcfSpec, write_sized_vcf

ROOT = Path(__file__).resolve().parent.parent
GiB = 1024**3
T = TypeVar("T")
MiB = 1024**2
# Multi-GiB bodies: generous per-operation timeouts (validation of 5 GiB takes minutes).
LONG = httpx.Timeout(30.0, read=3600.0, write=3600.0)


# ------------------------------------------------------------------ a file-manager of our own


@dataclass
class OwnFileManager:
    """A file-manager process with its own database and storage, and a token issuer."""

    workdir: Path
    port: int = 0
    process: subprocess.Popen[bytes] | None = None
    database: str = field(default_factory=lambda: f"bench_file_manager_{secrets.token_hex(4)}")
    admin_url: str = "postgresql://postgres@127.0.0.1:5432/postgres"

    def start(self) -> tuple[str, str, int]:
        from fedimpute_shared.embedded import free_port
        from fedimpute_shared.testing.tokens import TokenIssuer

        self.issuer = TokenIssuer()
        self.port = free_port()
        subprocess.run(
            ["psql", self.admin_url, "-qc", f'CREATE DATABASE "{self.database}"'], check=True
        )
        storage = self.workdir / "storage"
        shutil.rmtree(storage, ignore_errors=True)
        env = {
            **os.environ,
            "DATABASE_URL": f"postgresql+asyncpg://postgres@127.0.0.1:5432/{self.database}",
            "JWKS_URL": self.issuer.jwks_url,
            "STORAGE_DIR": str(storage),
            "PORT": str(self.port),
            "PUBLIC_BASE_PATH": "/files",
            "REAPER_ENABLED": "false",
            "LOG_LEVEL": "WARNING",
            "LOG_JSON": "false",
            # development: the generated secrets' defaults are accepted, as in the tests
            "ENVIRONMENT": "development",
            "REDIS_URL": os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0"),
        }
        python = sys.executable
        subprocess.run([python, "-m", "file_manager", "migrate"], env=env, check=True)
        self.process = subprocess.Popen([python, "-m", "file_manager", "serve"], env=env)
        base = f"http://127.0.0.1:{self.port}"
        for _ in range(200):
            try:
                if httpx.get(base + "/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        # long-lived: a 5 GiB round (two uploads, two validations, bcftools) takes an hour
        token = self.issuer.access_token(roles=["researcher"], expires_in=12 * 3600)
        return base, token, self.process.pid

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(30)
        self.issuer.close()
        subprocess.run(
            [
                "psql",
                self.admin_url,
                "-qc",
                f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)',
            ],
            check=False,
        )
        shutil.rmtree(self.workdir / "storage", ignore_errors=True)


# ------------------------------------------------------------------ measurements


def timed(fn: Callable[..., T], *args: object) -> tuple[float, T]:
    started = time.perf_counter()
    result = fn(*args)
    return time.perf_counter() - started, result


def checksum(file: dict[str, object]) -> str:
    """The SHA-256 file-manager computed, from a file's JSON view."""
    checksums = file["checksums"]
    assert isinstance(checksums, dict)
    return str(checksums["sha256"])


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(8 * MiB):
            digest.update(chunk)
    return digest.hexdigest()


def copy_seconds(path: Path) -> float:
    target = path.with_suffix(".copy")
    started = time.perf_counter()
    subprocess.run(["cp", str(path), str(target)], check=True)
    subprocess.run(["sync", str(target)], check=True)  # our uploads fsync too
    elapsed = time.perf_counter() - started
    target.unlink()
    return elapsed


def file_chunks(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as f:
        while chunk := f.read(MiB):
            yield chunk


def simple_upload(base: str, auth: dict[str, str], path: Path) -> dict[str, object]:
    with httpx.Client(base_url=base, headers=auth, timeout=LONG) as http:
        response = http.post(
            "/files",
            params={"filename": path.name, "build": "hg38"},
            content=file_chunks(path),
            headers={"Content-Type": "application/octet-stream"},
        )
    response.raise_for_status()
    return dict(response.json())


def tus_upload(base: str, token: str, path: Path) -> str:
    client = tus_client.TusClient(
        base + "/files/uploads", headers={"Authorization": f"Bearer {token}"}
    )
    with open(path, "rb") as stream:
        uploader = client.uploader(
            file_stream=stream,
            chunk_size=64 * MiB,
            metadata={"filename": path.name, "build": "hg38"},
        )
        uploader.upload()
    return str(uploader.url).rstrip("/").rsplit("/", 1)[1]


def wait_validated(base: str, auth: dict[str, str], file_id: str) -> dict[str, object]:
    with httpx.Client(base_url=base, headers=auth, timeout=30) as http:
        while True:
            file = http.get(f"/files/{file_id}").json()
            if file["status"] != "validating":
                return dict(file)
            time.sleep(0.5)


def download_check(base: str, auth: dict[str, str], file_id: str, expected: str) -> float:
    digest = hashlib.sha256()
    started = time.perf_counter()
    with (
        httpx.Client(base_url=base, headers=auth, timeout=LONG) as http,
        http.stream("GET", f"/files/{file_id}/content") as response,
    ):
        response.raise_for_status()
        for chunk in response.iter_bytes(MiB):
            digest.update(chunk)
    elapsed = time.perf_counter() - started
    if digest.hexdigest() != expected:
        raise SystemExit("download is not byte-identical")
    return elapsed


def delete(base: str, auth: dict[str, str], file_id: str) -> None:
    httpx.delete(f"{base}/files/{file_id}", headers=auth, timeout=60).raise_for_status()


def bcftools_seconds(path: Path) -> tuple[float, int]:
    started = time.perf_counter()
    out = subprocess.run(
        ["bash", "-c", f"set -o pipefail; bcftools view -H {shlex.quote(str(path))} | wc -l"],
        check=True,
        capture_output=True,
        text=True,
    )
    return time.perf_counter() - started, int(out.stdout.strip())


def validation_seconds(file: dict[str, object]) -> float:
    from datetime import datetime

    uploaded = datetime.fromisoformat(str(file["uploaded_at"]))
    validated = datetime.fromisoformat(str(file["validated_at"]))
    return (validated - uploaded).total_seconds()


# ------------------------------------------------------------------ one size


@dataclass
class Row:
    size_bytes: int
    variants: int
    samples: int
    cp_s: float
    simple_s: float
    tus_s: float
    download_s: float
    validation_s: float
    validation_tus_s: float
    bcftools_s: float
    fm_peak_upload: int
    fm_peak_validation: int
    validator_peak: int
    gateway_peak: int | None


def run_size(
    args: argparse.Namespace, base: str, token: str, pids: dict[str, int], gib: float
) -> Row:
    auth = {"Authorization": f"Bearer {token}"}
    path = args.workdir / f"synthetic_{gib:g}gib_{args.samples}s.vcf.gz"
    spec = VcfSpec(samples=args.samples, build="hg38", chromosome="20", seed=7)
    if not path.exists():
        print(f"generating {path} ...", flush=True)
        spec = write_sized_vcf(path, int(gib * GiB), spec)
        path.with_suffix(".variants").write_text(str(spec.variants))
    variants = int(path.with_suffix(".variants").read_text())
    size = path.stat().st_size
    expected = sha256_of(path)
    cp_s = copy_seconds(path)
    print(f"{gib:g} GiB: {size:,} bytes, {variants:,} variants; cp {cp_s:.1f}s", flush=True)

    with PeakRss(pids) as rss:
        simple_s, meta = timed(simple_upload, base, auth, path)
    assert isinstance(meta, dict)
    if checksum(meta) != expected:
        raise SystemExit("server SHA-256 differs from the file's")
    print(f"  simple upload {simple_s:.1f}s", flush=True)
    with PeakRss(pids) as rss_validation:
        file = wait_validated(base, auth, str(meta["id"]))
    if file["status"] != "valid":
        raise SystemExit(f"validation failed: {file['validation']}")
    validation_s = validation_seconds(file)
    print(f"  validation {validation_s:.1f}s", flush=True)
    download_s = download_check(base, auth, str(meta["id"]), expected)
    delete(base, auth, str(meta["id"]))

    with PeakRss(pids) as rss_tus:
        tus_s, tus_id = timed(tus_upload, base, token, path)
    print(f"  tus upload {tus_s:.1f}s", flush=True)
    with PeakRss(pids) as rss_validation_tus:
        tus_file = wait_validated(base, auth, str(tus_id))
    validation_tus_s = validation_seconds(tus_file)
    if checksum(tus_file) != expected:
        raise SystemExit("tus upload SHA-256 differs")
    delete(base, auth, str(tus_id))

    bcftools_s, counted = bcftools_seconds(path)
    if counted != variants:
        raise SystemExit(f"bcftools counted {counted} variants, expected {variants}")
    print(f"  bcftools view -H | wc -l {bcftools_s:.1f}s", flush=True)
    upload_peaks = [rss.peak["file-manager"], rss_tus.peak["file-manager"]]
    validation_peaks = [
        rss_validation.peak["file-manager"],
        rss_validation_tus.peak["file-manager"],
    ]
    gateway = max(rss.peak["gateway"], rss_tus.peak["gateway"]) if "gateway" in pids else None
    return Row(
        size_bytes=size,
        variants=variants,
        samples=args.samples,
        cp_s=cp_s,
        simple_s=simple_s,
        tus_s=tus_s,
        download_s=download_s,
        validation_s=validation_s,
        validation_tus_s=validation_tus_s,
        bcftools_s=bcftools_s,
        fm_peak_upload=max(upload_peaks),
        fm_peak_validation=max(validation_peaks),
        validator_peak=max(
            rss_validation.peak_children["file-manager"],
            rss_validation_tus.peak_children["file-manager"],
        ),
        gateway_peak=gateway,
    )


# ------------------------------------------------------------------ report


def mbps(size: int, seconds: float) -> str:
    return f"{size / MiB / seconds:,.0f} MiB/s"


def mb(n: int | None) -> str:
    return "n/a" if n is None else f"{n / MiB:,.0f} MB"


def report(rows: list[Row], command: str, through: str) -> str:
    lines = [
        "# Upload benchmark (file-manager)",
        "",
        f"Command: `{command}`",
        "",
        f"Target: {through}. Machine: {os.cpu_count()} cores, "
        f"{psutil.virtual_memory().total / GiB:.0f} GiB RAM, load average at start "
        f"{os.getloadavg()[0]:.1f} (the machine is shared with other sessions, so absolute "
        "numbers are noisy; ratios were taken back to back on the same file).",
        "",
        "Synthetic VCFs from `file_manager.testdata` (chr20, hg38, phased, random genotypes, "
        "bgzip level 1). Uploads stream from disk; the server computes MD5 + SHA-256, writes, "
        "fsyncs and renames; `cp` is followed by `sync` of the copy to be comparable.",
        "",
        "| file | cp | simple upload (ratio to cp) | tus upload, 64 MiB chunks (ratio) "
        "| download + SHA-256 check |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r.size_bytes / GiB:.2f} GiB | {mbps(r.size_bytes, r.cp_s)} "
            f"| {mbps(r.size_bytes, r.simple_s)} ({r.cp_s / r.simple_s:.2f}) "
            f"| {mbps(r.size_bytes, r.tus_s)} ({r.cp_s / r.tus_s:.2f}) "
            f"| {mbps(r.size_bytes, r.download_s)} |"
        )
    lines += [
        "",
        "Peak resident memory (sampled every 50 ms). Goal: flat, under 150 MB, whatever the size.",
        "",
        "| file | file-manager during uploads | file-manager during validation "
        "| validator child process | gateway during uploads |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r.size_bytes / GiB:.2f} GiB | {mb(r.fm_peak_upload)} | {mb(r.fm_peak_validation)} "
            f"| {mb(r.validator_peak)} | {mb(r.gateway_peak)} |"
        )
    lines += [
        "",
        "Validation (all of §7's file rules, statistics, build detection and the tabix index) "
        "against `bcftools view -H file | wc -l` on the same file:",
        "",
        "| file | variants x samples | validation (simple / tus upload) | variants/s "
        "| bcftools view -H \\| wc -l | ratio (ours / bcftools speed) |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        best = min(r.validation_s, r.validation_tus_s)
        lines.append(
            f"| {r.size_bytes / GiB:.2f} GiB | {r.variants:,} x {r.samples:,} "
            f"| {r.validation_s:.1f}s / {r.validation_tus_s:.1f}s "
            f"| {r.variants / best:,.0f} "
            f"| {r.bcftools_s:.1f}s ({r.variants / r.bcftools_s:,.0f}/s) "
            f"| {r.bcftools_s / best:.2f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--sizes-gib", type=float, nargs="+", default=[1.0, 5.0])
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--base-url", help="file-manager or gateway (+/api); default: start one")
    parser.add_argument("--token", help="bearer token (with --base-url)")
    parser.add_argument("--fm-pid", type=int, help="file-manager pid (with --base-url)")
    parser.add_argument("--gateway-pid", type=int)
    parser.add_argument("--workdir", type=Path, default=ROOT / "var" / "bench-upload")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks-upload.md")
    args = parser.parse_args(argv)
    args.workdir.mkdir(parents=True, exist_ok=True)
    own: OwnFileManager | None = None
    if args.base_url:
        if not (args.token and args.fm_pid):
            parser.error("--base-url needs --token and --fm-pid")
        base, token, fm_pid = args.base_url.rstrip("/"), args.token, args.fm_pid
        through = f"{base} (given)"
    else:
        own = OwnFileManager(args.workdir)
        base, token, fm_pid = own.start()
        through = "file-manager directly (started by the script, loopback)"
    pids = {"file-manager": fm_pid}
    if args.gateway_pid:
        pids["gateway"] = args.gateway_pid
    command = "python bench/upload.py " + " ".join(
        shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]) if a != token
    )
    rows: list[Row] = []
    try:
        for gib in args.sizes_gib:
            rows.append(run_size(args, base, token, pids, gib))
            args.out.write_text(report(rows, command, through))  # each size as soon as done
    finally:
        if own is not None:
            own.stop()
    print(report(rows, command, through))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
