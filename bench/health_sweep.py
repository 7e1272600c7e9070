"""Health-sweep benchmark: N simulated services on loopback, each answering after L seconds,
swept by the real health worker inside a real service-registry process.

    .venv/bin/python bench/health_sweep.py --services 1000 --latency 0.5 --concurrency 200

Reports the sweep time against the ideal ceil(N/C)·L (goal: within 1.2x), the same probes in a
sequential loop for comparison, and the registry's peak memory (VmHWM of its process). The
simulated services answer each probe with ``Connection: close`` so, as with real services on
different hosts, every probe opens a new TCP connection.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import re
import secrets
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import cast

import httpx
import uvloop
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "shared" / "src"))
sys.path.insert(0, str(ROOT / "service-registry" / "src"))

from memory import MiB, high_water_mark  # noqa: E402 (bench/memory.py)
from results import Row, write_rows  # noqa: E402

from fedimpute_shared.embedded import free_port  # noqa: E402
from fedimpute_shared.testing.database import migrated_database  # noqa: E402
from fedimpute_shared.testing.infra import postgres_admin_url  # noqa: E402

SERVICE_INFO = json.dumps(
    {
        "type": {"group": "org.ga4gh", "artifact": "wes", "version": "1.1.0"},
        "workflow_type_versions": {"WDL": {"workflow_type_version": ["1.0"]}},
    }
).encode()


# ------------------------------------------------------------------ simulated services (child)


async def serve_simulated(port: int, latency: float) -> None:
    """Every path answers a WES service-info after ``latency`` seconds, then closes.

    A bare asyncio Protocol (no task per connection): the simulated services stand for remote
    machines, so they should cost this machine as little CPU as possible.
    """
    response = (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
        + f"Content-Length: {len(SERVICE_INFO)}\r\n\r\n".encode()
        + SERVICE_INFO
    )
    loop = asyncio.get_running_loop()

    class Simulated(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            # a TCP server's connection (uvloop's transports do not subclass asyncio.Transport)
            self.transport = cast(asyncio.Transport, transport)
            self.received = b""

        def data_received(self, data: bytes) -> None:
            self.received += data
            if b"\r\n\r\n" in self.received:
                loop.call_later(latency, self.answer)

        def answer(self) -> None:
            if not self.transport.is_closing():
                self.transport.write(response)
                self.transport.close()

    server = await loop.create_server(Simulated, "127.0.0.1", port, backlog=4096)
    async with server:
        await server.serve_forever()


# ------------------------------------------------------------------ helpers


def wait_port(port: int, within: float = 30) -> None:
    import socket

    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"nothing listens on {port}")


def metric_value(exposition: str, name: str) -> float:
    """The value of an unlabelled sample in a Prometheus text exposition."""
    found = re.search(rf"^{re.escape(name)} (\S+)", exposition, re.M)
    if found is None:
        raise RuntimeError(f"{name} is not in /metrics")
    return float(found.group(1))


async def insert_services(database_url: str, sim_url: str, count: int) -> None:
    """N active WES services pointing at the simulated remotes, inserted through the registry's
    own table definition (its column defaults included, so the bench follows the schema)."""
    from sqlalchemy import insert

    from service_registry.models import ImputationService, ServiceKind

    engine = create_async_engine(database_url)
    rows = [
        {
            "id": uuid.uuid4(),
            "name": f"bench {i}",
            "slug": f"bench-{i}",
            "kind": ServiceKind.GA4GH_WES,
            "base_url": f"{sim_url}/s{i}",
        }
        for i in range(count)
    ]
    async with engine.begin() as conn:
        await conn.execute(insert(ImputationService), rows)
    await engine.dispose()


async def response_times(database_url: str) -> list[float]:
    """p50, p90 and max of the recorded probe times: how far each probe was from L."""
    engine = create_async_engine(database_url)
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                text(
                    "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY response_time_ms),"
                    " percentile_cont(0.9) WITHIN GROUP (ORDER BY response_time_ms),"
                    " max(response_time_ms) FROM service_health_checks"
                )
            )
        ).one()
    await engine.dispose()
    return [float(v) for v in row]


async def sweeps_from_metrics(
    client: httpx.AsyncClient, url: str, wanted: int, within: float
) -> list[float]:
    """Durations of the first ``wanted`` sweeps, read from the registry's own histogram."""
    durations: list[float] = []
    last_sum = last_count = 0.0
    deadline = time.monotonic() + within
    while len(durations) < wanted and time.monotonic() < deadline:
        body = (await client.get(f"{url}/metrics")).text
        count = metric_value(body, "registry_health_sweep_seconds_count")
        total = metric_value(body, "registry_health_sweep_seconds_sum")
        if count > last_count:
            durations.append((total - last_sum) / (count - last_count))
            last_sum, last_count = total, count
        await asyncio.sleep(0.2)
    return durations


async def sequential_sweep(sim_url: str, count: int) -> float:
    """The same probes with the same client, one after the other (what a naive loop would do)."""
    from service_registry.health.http import probe_client
    from service_registry.health.probes import ProbeLimits, ProbeTarget, probe
    from service_registry.models import ServiceKind

    limits = ProbeLimits(10, 1_048_576, 3, 3000, allow_private=True)
    client = probe_client(True, 10)
    started = time.perf_counter()
    for i in range(count):
        await probe(client, ProbeTarget(ServiceKind.GA4GH_WES, f"{sim_url}/s{i}"), limits)
    return time.perf_counter() - started


# ------------------------------------------------------------------ main


async def run(args: argparse.Namespace) -> None:
    n, latency, concurrency = args.services, args.latency, args.concurrency
    ideal = math.ceil(n / concurrency) * latency
    sim_port, registry_port = free_port(), free_port()
    sim = subprocess.Popen(
        [sys.executable, __file__, "--serve-simulated", str(sim_port), str(latency)]
    )
    admin = postgres_admin_url(ROOT / "var" / "bench")
    migrations = ROOT / "service-registry" / "src" / "service_registry" / "migrations"
    registry: subprocess.Popen[bytes] | None = None
    try:
        wait_port(sim_port)
        sim_url = f"http://127.0.0.1:{sim_port}"
        async with migrated_database(admin, "bench-registry", migrations) as db_url:
            await insert_services(db_url, sim_url, n)
            env = os.environ | {
                "ENVIRONMENT": "development",  # generated secrets; no REDIS_URL needed
                "DATABASE_URL": db_url,
                "PORT": str(registry_port),
                "ALLOW_PRIVATE_URLS": "true",
                "HEALTH_CHECK_CONCURRENCY": str(concurrency),
                "HEALTH_CHECK_INTERVAL_SECONDS": "1",
                "HEALTH_CHECK_JITTER_RATIO": "0",
                "HEALTH_CHECK_TIMEOUT_SECONDS": "10",
                "LOG_LEVEL": "INFO",
                "LOG_JSON": "false",
                "CURSOR_SECRET": secrets.token_urlsafe(32),
            }
            registry = subprocess.Popen(
                [sys.executable, "-m", "service_registry", "serve"], env=env
            )
            wait_port(registry_port)
            async with httpx.AsyncClient(timeout=10) as client:
                durations = await sweeps_from_metrics(
                    client, f"http://127.0.0.1:{registry_port}", args.sweeps, 600
                )
            peak = high_water_mark(registry.pid) / MiB
            probe_ms = await response_times(db_url)
            registry.terminate()
            registry.wait(timeout=30)
            registry = None
            sequential = (
                await sequential_sweep(sim_url, args.sequential_services)
                if args.sequential_services
                else None
            )
    finally:
        if registry is not None:
            registry.kill()
        sim.terminate()
        sim.wait(timeout=10)
    best, median = min(durations), statistics.median(durations)
    print(f"\nN={n} services, L={latency} s, C={concurrency}; ideal ceil(N/C)*L = {ideal:.2f} s")
    print(
        f"concurrent sweep (real worker, {len(durations)} sweeps): best {best:.2f} s, median {median:.2f} s "
        f"= {median / ideal:.2f}x ideal (goal <= 1.20x)"
    )
    if sequential is not None:
        scale = n / args.sequential_services
        print(
            f"sequential loop over {args.sequential_services} services: {sequential:.2f} s"
            + (f" (x{scale:.0f} -> {sequential * scale:.0f} s for N)" if scale != 1 else "")
            + f"; concurrent is {sequential * scale / median:.0f}x faster"
        )
    print(f"registry peak RSS (VmHWM): {peak:.1f} MiB")
    p50, p90, worst = probe_ms
    print(
        f"probe time per service: p50 {p50:.0f} ms, p90 {p90:.0f} ms, max {worst:.0f} ms"
        f" (L = {latency * 1000:.0f} ms)"
    )
    rows = [
        Row(
            f"health sweep of {n} services (L = {latency} s, C = {concurrency}), median",
            round(median, 2),
            "s",
            limit="ideal ceil(N/C)·L",
            limit_value=ideal,
            goal="<= 1.2x ideal",
            met=median <= 1.2 * ideal,
        ),
        Row("registry peak RSS during the sweeps", round(peak, 1), "MiB"),
    ]
    if sequential is not None:
        rows.append(
            Row(
                "the same probes one after the other (sequential loop), for N",
                round(sequential * n / args.sequential_services, 1),
                "s",
                limit="concurrent sweep (median)",
                limit_value=median,
            )
        )
    write_rows(args.json, rows)


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--serve-simulated":
        # uvloop: the simulated services must not be the bottleneck of what is measured
        uvloop.run(serve_simulated(int(sys.argv[2]), float(sys.argv[3])))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, default=1000)
    parser.add_argument("--latency", type=float, default=0.5)
    parser.add_argument("--concurrency", type=int, default=200)
    parser.add_argument("--sweeps", type=int, default=3)
    parser.add_argument(
        "--sequential-services",
        type=int,
        default=1000,
        help="services in the sequential comparison (0 to skip; N takes N*L seconds)",
    )
    parser.add_argument("--json", type=Path, help="write the figures for `make bench` here")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
