"""Polling benchmark: N active jobs spread over the sandbox simulators (two Cloudgene servers,
CG3 and CG2, and a WES node), polled by the real job-processor poller in its own process.

    .venv/bin/python bench/polling.py --jobs 2000 --latency-ms 50 --concurrency 8 --batch 20

This process runs the simulators (each on its own thread and port, answering every request
after ``--latency-ms``), a stand-in for the registry, the vault and the token endpoint (instant
answers over real HTTP: each poll asks the registry for the service and the vault for the
credentials, as in production), and a file server for the WES inputs. It submits
``--remote-jobs`` real jobs to each simulator (kept queued), then starts the poller process
(``--child``) which stores N jobs pointing at them round robin and measures full polling cycles
(every job polled once: one status request each):

- the cycle time against the network-bound ideal ``max over services of ceil(n_s / C) * L``
  (C = ``MAX_CONCURRENT_PER_SERVICE`` requests at once per service, L the simulated latency);
- job-processor's CPU seconds per 1,000 polls (its own ``getrusage``, simulators excluded);
- job-processor's peak memory (``VmHWM``);
- the same cycle with one simulator in outage (``refuse``: connections refused; ``hang``:
  accepted, never answered), with each healthy service's own finishing time beside its normal one.
"""

from __future__ import annotations

import argparse
import asyncio
import http.server
import json
import math
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
for member in ("shared", "sandbox", "job-processor", "service-registry"):
    sys.path.insert(0, str(ROOT / member / "src"))

from results import Row, write_rows  # noqa: E402 (bench/results.py)

from sandbox.pytest_plugin import SandboxHandle, start_sandbox  # noqa: E402
from sandbox.testdata import make_vcf  # noqa: E402

PASSWORD = "Bench-Zip-Pass_4-FedImpute!"
FOREVER = 86_400.0


# ------------------------------------------------------------------ stand-ins (this process)


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


class Upstream(http.server.BaseHTTPRequestHandler):
    """The registry, the vault and the token endpoint, answering at once (keep-alive)."""

    protocol_version = "HTTP/1.1"
    services: dict[str, dict[str, Any]] = {}
    tokens: dict[str, str] = {}

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _send(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self._send(200, {"access_token": "bench", "token_type": "Bearer", "expires_in": 3600})

    def do_GET(self) -> None:
        path = self.path.split("?")[0]
        if m := re.fullmatch(r"/internal/services/([^/]+)/health", path):
            self._send(200, {"status": "healthy", "error": None})
        elif m := re.fullmatch(r"/internal/services/([^/]+)", path):
            found = self.services.get(m.group(1))
            self._send(200, found) if found else self._send(404, {})
        elif m := re.fullmatch(r"/internal/users/[^/]+/service-credentials/([^/]+)", path):
            token = self.tokens.get(m.group(1), "")
            secret = {"credential_type": "api_token", "secret": {"token": token}}
            self._send(200, secret)
        else:
            self._send(404, {})


def serve(handler: type[http.server.BaseHTTPRequestHandler], **kw: Any) -> str:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), lambda *a: handler(*a, **kw))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}"


def service_payload(slug: str, sim: SandboxHandle) -> dict[str, Any]:
    from service_registry.workflows.templates import TEMPLATES

    cloudgene = sim.kind == "michigan"
    return {
        "id": str(uuid.uuid4()),
        "slug": slug,
        "name": slug,
        "kind": "michigan" if cloudgene else "ga4gh_wes",
        "base_url": sim.base_url,
        "api_url": None if cloudgene else sim.api_url,
        "cloudgene_app_id": sim.info["app_ids"][0] if cloudgene else None,
        "protocol_options": {},
        "workflow_profile": None if cloudgene else TEMPLATES["sandbox-imputation"].profile,
        "requires_credentials": cloudgene,
        "credential_type": "api_token" if cloudgene else "none",
        "is_active": True,
        "panels": [],
        "admin_url": sim.admin_url,
    }


async def submit_remote_jobs(
    service: dict[str, Any], token: str, files_url: str, files_dir: Path, count: int
) -> list[str]:
    """``count`` real jobs on the simulator, through the real adapters."""
    from job_processor.adapters import adapter_for
    from job_processor.adapters.base import Credentials, InputFile, JobSpec, ServiceTarget

    data = make_vcf(chrom="20")
    (files_dir / "chr20.vcf.gz").write_bytes(data)

    @asynccontextmanager
    async def opener() -> AsyncIterator[AsyncIterator[bytes]]:
        async def chunks() -> AsyncIterator[bytes]:
            yield data

        yield chunks()

    item = InputFile(
        file_id=uuid.uuid4(),
        filename="chr20.vcf.gz",
        size=len(data),
        sha256=None,
        open=opener,
        url=f"{files_url}/chr20.vcf.gz",
    )
    target = ServiceTarget.from_registry(service)
    creds = Credentials("token", {"token": token}) if token else Credentials.none()
    async with httpx.AsyncClient(timeout=60) as client:
        adapter = adapter_for(target.service_type, client)
        ids = []
        for i in range(count):
            spec = JobSpec(
                job_id=uuid.uuid4(),
                name=f"bench {i}",
                panel="apps@1000g-phase-3-v5",
                build="hg19",
                phasing="eagle",
                population="eur",
                r2_filter=0.0,
                mode="imputation",
                inputs=[item],
                result_password=PASSWORD,
            )
            ids.append((await adapter.submit(target, creds, spec)).remote_id)
    return ids


def driver(args: argparse.Namespace) -> int:
    cloudgene = {"queue_seconds": FOREVER}
    sims = {
        "cloudgene-cg3": start_sandbox(
            "michigan", "cg3", timings=cloudgene, max_running_jobs_per_user=100_000
        ),
        "cloudgene-cg2": start_sandbox(
            "michigan", "cg2", timings=cloudgene, max_running_jobs_per_user=100_000
        ),
        "wes-spec": start_sandbox("wes", "spec", timings={"queued_seconds": FOREVER}),
    }
    files_dir = Path(tempfile.mkdtemp(prefix="bench-polling-"))
    files_url = serve(_Quiet, directory=str(files_dir))
    services = {slug: service_payload(slug, sim) for slug, sim in sims.items()}
    remote: dict[str, list[str]] = {}
    for slug, sim in sims.items():
        token = sim.users[0].token if sim.kind == "michigan" else ""
        Upstream.tokens[services[slug]["id"]] = token
        remote[slug] = asyncio.run(
            submit_remote_jobs(services[slug], token, files_url, files_dir, args.remote_jobs)
        )
        sim.admin.set(latency_ms=args.latency_ms)
    Upstream.services = {s["id"]: s for s in services.values()}
    config = {"upstream": serve(Upstream), "services": services, "remote": remote}
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump(config, handle)
    argv = [sys.executable, __file__, "--child", handle.name, *sys.argv[1:]]
    load = os.getloadavg()
    print(f"load average before: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}", flush=True)
    code = subprocess.call(argv)
    for sim in sims.values():
        sim.stop()
    return code


# ------------------------------------------------------------------ the poller (child process)


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def vm_hwm_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def child(args: argparse.Namespace, config: dict[str, Any]) -> None:
    from sqlalchemy import func, select, update

    from fedimpute_shared.config import Environment
    from fedimpute_shared.db import create_engine, create_sessionmaker, utcnow
    from fedimpute_shared.http import create_http_client
    from fedimpute_shared.testing.database import migrated_database
    from fedimpute_shared.testing.infra import postgres_admin_url
    from job_processor.clients import Upstreams
    from job_processor.config import Settings
    from job_processor.jobs.worker import Workers
    from job_processor.main import MIGRATIONS_DIR, adapter_lookup, remote_client
    from job_processor.models import Job, JobMode, JobStatus, Phasing
    from job_processor.passwords import PasswordBox

    services: dict[str, dict[str, Any]] = config["services"]
    admin = postgres_admin_url(ROOT / "var")
    async with migrated_database(admin, "bench_polling", MIGRATIONS_DIR) as url:
        settings = Settings(
            database_url=url,
            # A local bench with the development secrets (production guards refuse them).
            environment=Environment.DEVELOPMENT,
            service_registry_url=config["upstream"],
            user_service_url=config["upstream"],
            file_manager_url=config["upstream"],
            allow_private_urls=True,
            workers_enabled=False,
            log_json=False,
            log_level="ERROR",
            max_concurrent_per_service=args.concurrency,
            worker_batch_size=args.batch,
            remote_timeout_seconds=args.timeout,
            poll_initial_seconds=FOREVER,  # a polled job is not due again within the cycle
            poll_max_seconds=FOREVER,
            breaker_pause_seconds=FOREVER,
        )
        engine = create_engine(url, pool_size=settings.database_pool_size)
        sessionmaker = create_sessionmaker(engine)
        http = create_http_client()
        remote = remote_client(settings)
        workers = Workers(
            sessionmaker,
            settings,
            Upstreams(settings, http),
            PasswordBox(settings.result_password_key),
            adapter_lookup(remote),
        )
        slugs = list(services)
        async with sessionmaker() as session:
            for i in range(args.jobs):
                slug = slugs[i % len(slugs)]
                ids = config["remote"][slug]
                service = services[slug]
                session.add(
                    Job(
                        owner_id=uuid.uuid4(),
                        name=f"bench {i}",
                        service_id=uuid.UUID(service["id"]),
                        service_slug=slug,
                        service_type=service["kind"],
                        panel_id=uuid.uuid4(),
                        panel_slug="1000g-phase3",
                        panel_remote_id="apps@1000g-phase-3-v5",
                        build="hg19",
                        phasing=Phasing.EAGLE,
                        mode=JobMode.IMPUTATION,
                        input_file_ids=[uuid.uuid4()],
                        inputs=[],
                        status=JobStatus.QUEUED,
                        remote_id=ids[(i // len(slugs)) % len(ids)],
                        remote_messages=[],
                        collected={},
                        result_notes=[],
                        result_file_ids=[],
                        next_action_at=utcnow() + timedelta(days=1),
                    )
                )
            await session.commit()
        per_service = {slug: math.ceil(args.jobs / len(slugs)) for slug in slugs}
        ideal = max(math.ceil(n / args.concurrency) for n in per_service.values())
        ideal *= args.latency_ms / 1000

        async def cycle(label: str) -> dict[str, Any]:
            workers._breakers.clear()  # each cycle starts with closed breakers
            workers._health.clear()
            async with sessionmaker() as session:
                await session.execute(
                    update(Job).values(next_action_at=utcnow(), paused_note=None, poll_failures=0)
                )
                await session.commit()
            started_wall, started, cpu = utcnow(), time.perf_counter(), cpu_seconds()
            polled = rounds = 0
            while polled < args.jobs:
                n = await workers.poll_due()
                if n == 0:
                    break
                polled, rounds = polled + n, rounds + 1
            elapsed, used = time.perf_counter() - started, cpu_seconds() - cpu
            async with sessionmaker() as session:
                rows = await session.execute(
                    select(
                        Job.service_slug,
                        func.max(Job.updated_at),
                        func.count().filter(Job.paused_note.is_not(None)),
                        func.count().filter(Job.status != JobStatus.QUEUED),
                    ).group_by(Job.service_slug)
                )
                finished = {
                    slug: ((last - started_wall).total_seconds(), paused, moved)
                    for slug, last, paused, moved in rows.all()
                }
            result = {
                "label": label,
                "polled": polled,
                "rounds": rounds,
                "seconds": elapsed,
                "ideal": ideal,
                "cpu_per_1000": used / max(polled, 1) * 1000,
                "per_service": finished,
            }
            print(json.dumps(result), flush=True)
            return result

        await cycle("warm-up")
        normal = [await cycle(f"normal {i + 1}") for i in range(args.cycles)]
        victim = services[slugs[0]]
        outages = {}
        for outage in ("refuse", "hang"):
            httpx.put(f"{victim['admin_url']}/_sandbox/faults", json={"outage": outage})
            outages[outage] = await cycle(f"{slugs[0]} outage={outage}")
            httpx.delete(f"{victim['admin_url']}/_sandbox/faults")
            httpx.put(
                f"{victim['admin_url']}/_sandbox/faults", json={"latency_ms": args.latency_ms}
            )
        print(json.dumps({"peak_rss_mib": vm_hwm_mib(), "load": os.getloadavg()}), flush=True)
        write_rows(args.json, figures(args, slugs, normal, outages, vm_hwm_mib()))
        await remote.aclose()
        await http.aclose()
        await engine.dispose()


def figures(
    args: argparse.Namespace,
    slugs: list[str],
    normal: list[dict[str, Any]],
    outages: dict[str, dict[str, Any]],
    peak_mib: float,
) -> list[Row]:
    """The figures for `make bench`: medians of the normal cycles, and how late the healthy
    services finish while the first one is in outage (no goal was set for these)."""
    cycle = statistics.median(r["seconds"] for r in normal)
    rows = [
        Row(
            f"polling cycle, {args.jobs} jobs (L = {args.latency_ms:.0f} ms, C = {args.concurrency})",
            round(cycle, 2),
            "s",
            limit="network-bound ideal max_s ceil(n_s/C)·L",
            limit_value=normal[0]["ideal"],
        ),
        Row(
            "job-processor CPU per 1,000 polls",
            round(statistics.median(r["cpu_per_1000"] for r in normal), 2),
            "s",
        ),
        Row("job-processor peak RSS (whole run)", round(peak_mib, 1), "MiB"),
    ]
    healthy = slugs[1:]
    usual = max(statistics.median(r["per_service"][s][0] for r in normal) for s in healthy)
    for outage, result in outages.items():
        rows.append(
            Row(
                f"healthy services' last poll with {slugs[0]} in outage ({outage})",
                round(max(result["per_service"][s][0] for s in healthy), 2),
                "s",
                limit="the same without an outage",
                limit_value=usual,
            )
        )
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--remote-jobs", type=int, default=10, help="real jobs per simulator")
    parser.add_argument("--latency-ms", type=float, default=50)
    parser.add_argument("--concurrency", type=int, default=8, help="MAX_CONCURRENT_PER_SERVICE")
    parser.add_argument("--batch", type=int, default=20, help="WORKER_BATCH_SIZE")
    parser.add_argument("--timeout", type=float, default=5, help="REMOTE_TIMEOUT_SECONDS")
    parser.add_argument("--cycles", type=int, default=3)
    parser.add_argument("--json", type=Path, help="write the figures for `make bench` here")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        asyncio.run(child(args, json.loads(Path(args.child).read_text())))
        return 0
    return driver(args)


if __name__ == "__main__":
    sys.exit(main())
