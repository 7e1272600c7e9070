"""Upload benchmark: synthetic bgzipped VCFs of 1 and 5 GiB uploaded simple (raw body) and with
tus (tuspy), against a plain ``cp`` of the same file on the same disk; peak memory of file-manager
(and of the gateway when its pid is given); validation time inside file-manager against reading
the file (``bgzip -dc file | wc -l``, issue 15's limit); download throughput with a byte-for-byte
check.

Direct to a file-manager this script starts itself (its own database, storage and token issuer):

    .venv/bin/python bench/upload.py --sizes-gib 1 5

Through a running fleet (the gateway strips /api):

    .venv/bin/python bench/upload.py --base-url http://127.0.0.1:8000/api --token "$TOKEN" \\
        --fm-pid "$(pgrep -f 'file_manager serve')" --gateway-pid "$(pgrep -f 'api_gateway serve')"

Figures go to docs/benchmarks-upload.md (``--out``) with the command that produced them.

For ``make bench`` (about two minutes once the files exist; the first run generates them):

    .venv/bin/python bench/upload.py --quick --json var/bench/upload.json

``--quick`` times one simple upload of 1 GiB against ``cp`` (no tus, download or waiting for
validation) and then runs ``bench/validation.py --quick`` (the validator against reading the
file, 0.1 GiB); ``--json`` writes both kinds of rows.
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
import results  # bench/results.py: the make-bench rows
import validation  # bench/validation.py
from memory import PeakRss  # bench/memory.py (the scripts run from bench/)
from tusclient import client as tus_client

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
    read_s: float  # bgzip -dc | wc -l
    fm_peak_upload: int
    fm_peak_validation: int
    validator_peak: int
    gateway_peak: int | None


def run_size(
    args: argparse.Namespace, base: str, token: str, pids: dict[str, int], gib: float
) -> Row:
    auth = {"Authorization": f"Bearer {token}"}
    path, variants = validation.synthetic_vcf(args.workdir, gib, args.samples)
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

    read, lines = validation.read_file(path)
    print(f"  bgzip -dc | wc -l {read.wall:.1f}s ({lines:,} lines)", flush=True)
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
        read_s=read.wall,
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
        "Validation inside file-manager (all of §7's file rules, statistics, build detection and "
        "the tabix index; from the upload's end to the report) against reading the file, "
        "`bgzip -dc file | wc -l`:",
        "",
        "| file | variants x samples | validation (simple / tus upload) | variants/s "
        "| bgzip -dc \\| wc -l | ratio (validation / reading time) |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        best = min(r.validation_s, r.validation_tus_s)
        lines.append(
            f"| {r.size_bytes / GiB:.2f} GiB | {r.variants:,} x {r.samples:,} "
            f"| {r.validation_s:.1f}s / {r.validation_tus_s:.1f}s "
            f"| {r.variants / best:,.0f} "
            f"| {r.read_s:.1f}s "
            f"| {best / r.read_s:.2f} |"
        )
    return "\n".join(lines) + "\n"


@dataclass
class QuickRow:
    size_bytes: int
    cp_s: float
    simple_s: float
    load: float


def quick_size(args: argparse.Namespace, base: str, token: str, gib: float) -> QuickRow:
    """One simple upload against ``cp``, back to back; the file is deleted without waiting for
    its validation (``bench/validation.py`` measures that)."""
    auth = {"Authorization": f"Bearer {token}"}
    path, _ = validation.synthetic_vcf(args.workdir, gib, args.samples)
    cp_s = copy_seconds(path)
    simple_s, meta = timed(simple_upload, base, auth, path)
    if checksum(meta) != sha256_of(path):
        raise SystemExit("server SHA-256 differs from the file's")
    delete(base, auth, str(meta["id"]))
    row = QuickRow(path.stat().st_size, cp_s, simple_s, os.getloadavg()[0])
    print(f"{gib:g} GiB: cp {cp_s:.2f}s, simple upload {simple_s:.2f}s", flush=True)
    return row


def upload_rows(sizes: list[tuple[int, float, float]], through: str) -> list[results.Row]:
    """``make bench`` rows: (bytes, cp seconds, upload seconds) per size, as speeds."""
    out: list[results.Row] = []
    for size, cp_s, upload_s in sizes:
        speed, cp_speed = size / MiB / upload_s, size / MiB / cp_s
        out.append(
            results.Row(
                path=f"upload {through} vs cp, with MD5+SHA-256 ({size / GiB:.2f} GiB)",
                value=round(speed, 1),
                unit="MiB/s",
                limit="cp of the same file (+ sync)",
                limit_value=round(cp_speed, 1),
                goal=">= 0.6x",
                met=speed / cp_speed >= 0.6,
            )
        )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--sizes-gib", type=float, nargs="+", default=[1.0, 5.0])
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--base-url", help="file-manager or gateway (+/api); default: start one")
    parser.add_argument("--token", help="bearer token (with --base-url)")
    parser.add_argument("--fm-pid", type=int, help="file-manager pid (with --base-url)")
    parser.add_argument("--gateway-pid", type=int)
    parser.add_argument("--workdir", type=Path, default=ROOT / "var" / "bench-upload")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks-upload.md")
    parser.add_argument("--json", type=Path, help="write the make-bench rows here")
    parser.add_argument(
        "--quick", action="store_true", help="1 GiB simple upload + validation --quick"
    )
    args = parser.parse_args(argv)
    args.workdir.mkdir(parents=True, exist_ok=True)
    if args.quick:
        args.sizes_gib = [1.0]
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
    via = "through the gateway" if args.gateway_pid else "to file-manager"
    pids = {"file-manager": fm_pid}
    if args.gateway_pid:
        pids["gateway"] = args.gateway_pid
    command = "python bench/upload.py " + " ".join(
        shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]) if a != token
    )
    rows: list[Row] = []
    quick: list[QuickRow] = []
    try:
        for gib in args.sizes_gib:
            if args.quick:
                quick.append(quick_size(args, base, token, gib))
                continue
            rows.append(run_size(args, base, token, pids, gib))
            args.out.write_text(report(rows, command, through))  # each size as soon as done
    finally:
        if own is not None:
            own.stop()
    if rows:
        print(report(rows, command, through))
    measured = [(r.size_bytes, r.cp_s, r.simple_s) for r in rows]
    measured += [(q.size_bytes, q.cp_s, q.simple_s) for q in quick]
    json_rows = upload_rows(measured, via)
    if args.quick:
        checked = validation.run(validation.options(["--quick", "--workdir", str(args.workdir)]))
        print(validation.report(checked, "python bench/validation.py --quick"))
        json_rows += validation.rows(checked)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
    results.write_rows(args.json, json_rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
