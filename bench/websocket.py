"""Benchmark: 5,000 concurrent WebSocket clients on one notification process.

A real notification process (uvicorn, real PostgreSQL and Redis, its real consumer) serves
``/notifications/ws``; client processes open N WebSockets for one user (authenticated with a
bearer token, as a script would), all of them waiting. Then, R times, a ``job.status_changed``
event for that user is appended to the event stream exactly as job-processor's outbox relay
writes it, and every client notes when the ``job_status`` message reaches it. Reported per
event: the time from the append to the arrival at the median client (p50), the 99th
percentile (p99) and the last one (all). Also the notification process's resident memory
before the clients connect, with all of them connected, and its peak.

The path measured is the whole one: the consumer reads the entry, records it as processed in
PostgreSQL, publishes the push through Redis (replay log + pub/sub), the replica's listener
hands it to 5,000 connections' queues, and 5,000 sender tasks write it to their sockets.

Needs PostgreSQL and Redis (the test defaults: 127.0.0.1:5432 user postgres; TEST_REDIS_URL or
127.0.0.1:6379). Run from the repository root:

    .venv/bin/python bench/websocket.py --clients 5000 --rounds 10
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import platform
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
from memory import MiB, PeakRss  # bench/memory.py (the scripts run from bench/)
from results import Row, write_rows

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
COMMAND = ".venv/bin/python bench/websocket.py"


# ------------------------------------------------------------------ clients (child processes)


def run_clients(url: str, token: str, count: int, rounds: int, ready, results) -> None:  # type: ignore[no-untyped-def]
    """One client process: ``count`` WebSockets; reports readiness, then arrival times."""
    asyncio.run(_clients(url, token, count, rounds, ready, results))


async def _clients(url, token, count, rounds, ready, results) -> None:  # type: ignore[no-untyped-def]
    from websockets.asyncio.client import connect

    arrivals: list[tuple[int, float]] = []
    opened = asyncio.Semaphore(100)
    connected = 0
    all_ready = asyncio.Event()
    finished = asyncio.Event()

    async def client() -> None:
        nonlocal connected
        async with opened:
            ws = await connect(
                url,
                additional_headers={"Authorization": f"Bearer {token}"},
                open_timeout=60,
                ping_interval=None,
                compression=None,
            )
        async with ws:
            while json.loads(await ws.recv())["type"] != "ready":
                pass
            connected += 1
            if connected == count:
                all_ready.set()
            seen = 0
            while seen < rounds:
                text = await ws.recv()
                now = time.monotonic()
                if '"job_status"' in text:
                    arrivals.append((int(json.loads(text)["message"]), now))
                    seen += 1
            await finished.wait()

    tasks = [asyncio.create_task(client()) for _ in range(count)]
    await all_ready.wait()
    ready.put(count)
    while len(arrivals) < count * rounds:
        await asyncio.sleep(0.2)
        if any(t.done() and t.exception() for t in tasks):
            raise next(t.exception() for t in tasks if t.done() and t.exception())  # type: ignore[misc]
    results.put(arrivals)
    finished.set()
    await asyncio.gather(*tasks, return_exceptions=True)


# ------------------------------------------------------------------ the service


def start_service(port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [PY, "-m", "notification_service", "serve"], env=os.environ | env, cwd=ROOT
    )


def wait_ready(url: str, process: subprocess.Popen[bytes], within: float = 60) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit("notification exited during start-up")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"notification not ready at {url}")


def event_entry(owner: uuid.UUID, job_id: uuid.UUID, round_no: int, status: str) -> dict[str, str]:
    from fedimpute_shared.events import JobStatusChanged
    from fedimpute_shared.outbox import event_fields

    event = JobStatusChanged(
        producer="job-processor",
        job_id=job_id,
        owner_id=owner,
        job_name="benchmark",
        service_id=uuid.uuid4(),
        service_slug="sandbox-michigan",
        previous_status=None,
        status=status,
        message=str(round_no),
    )
    return event_fields(event)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


async def bench(args: argparse.Namespace) -> dict[str, object]:
    from redis.asyncio import Redis

    from fedimpute_shared.embedded import free_port
    from fedimpute_shared.testing.database import migrated_database
    from fedimpute_shared.testing.infra import postgres_admin_url, redis_url
    from fedimpute_shared.testing.tokens import TokenIssuer
    from notification_service.main import MIGRATIONS_DIR

    var = ROOT / "var" / "bench"
    redis_address = redis_url(var)
    issuer = TokenIssuer()
    owner = uuid.uuid4()
    token = issuer.access_token(owner, expires_in=3600)
    tag = uuid.uuid4().hex[:8]
    stream, channel = f"bench:events:{tag}", f"bench:push:{tag}"
    redis = Redis.from_url(redis_address)
    port = free_port()
    async with migrated_database(
        postgres_admin_url(var), "notification-bench", MIGRATIONS_DIR
    ) as db:
        env = {
            "ENVIRONMENT": "development",
            "PORT": str(port),
            "DATABASE_URL": db,
            "REDIS_URL": redis_address,
            "JWKS_URL": issuer.jwks_url,
            "EVENT_STREAM": stream,
            "WS_CHANNEL": channel,
            "DELIVERY_WORKERS_ENABLED": "false",
            "LOG_LEVEL": "WARNING",
        }
        service = start_service(port, env)
        try:
            wait_ready(f"http://127.0.0.1:{port}/ready", service)
            with PeakRss({"notification": service.pid}) as rss:
                idle = rss.baseline["notification"]
                per_process = [args.clients // args.processes] * args.processes
                per_process[0] += args.clients - sum(per_process)
                spawn = multiprocessing.get_context("spawn")
                ready, results = spawn.Queue(), spawn.Queue()
                url = f"ws://127.0.0.1:{port}/notifications/ws"
                started = time.monotonic()
                workers = [
                    spawn.Process(
                        target=run_clients, args=(url, token, n, args.rounds, ready, results)
                    )
                    for n in per_process
                ]
                for worker in workers:
                    worker.start()
                for _ in workers:
                    await asyncio.to_thread(ready.get, True, 600)
                connect_seconds = time.monotonic() - started
                await asyncio.sleep(2)
                connected_rss = rss._procs["notification"].memory_info().rss
                sent: dict[int, float] = {}
                job_id = uuid.uuid4()
                statuses = ["queued", "running"]
                for round_no in range(args.rounds):
                    entry = event_entry(owner, job_id, round_no, statuses[round_no % 2])
                    sent[round_no] = time.monotonic()
                    await redis.xadd(stream, entry)  # type: ignore[arg-type]
                    await asyncio.sleep(args.pause)
                arrivals: list[tuple[int, float]] = []
                for _ in workers:
                    arrivals += await asyncio.to_thread(results.get, True, 600)
                for worker in workers:
                    worker.join(60)
            rounds = []
            for round_no in range(args.rounds):
                latencies = [t - sent[r] for r, t in arrivals if r == round_no]
                rounds.append(
                    {
                        "received": len(latencies),
                        "p50": percentile(latencies, 0.5),
                        "p99": percentile(latencies, 0.99),
                        "all": max(latencies),
                    }
                )
        finally:
            service.terminate()
            service.wait(30)
            keys = [k async for k in redis.scan_iter(match=f"{channel}*")]
            await redis.delete(stream, *keys)
            await redis.aclose()
            issuer.close()
    return {
        "clients": args.clients,
        "processes": args.processes,
        "connect_seconds": connect_seconds,
        "rounds": rounds,
        "rss_idle": idle,
        "rss_connected": connected_rss,
        "rss_peak": rss.peak["notification"],
    }


def report(result: dict[str, object], args: argparse.Namespace) -> str:
    rounds: list[dict[str, float]] = result["rounds"]  # type: ignore[assignment]
    med = {k: statistics.median(r[k] for r in rounds) * 1000 for k in ("p50", "p99", "all")}
    worst = {k: max(r[k] for r in rounds) * 1000 for k in ("p50", "p99", "all")}
    load = os.getloadavg()
    lines = [
        f"    {COMMAND} --clients {args.clients} --rounds {args.rounds}",
        "",
        f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"load {load[0]:.1f} at the end; {result['processes']} client processes on the same CPUs.",
        "",
        "| figure | median of the rounds | worst round |",
        "|---|---|---|",
        f"| event → p50 client | {med['p50']:.0f} ms | {worst['p50']:.0f} ms |",
        f"| event → p99 client | {med['p99']:.0f} ms | {worst['p99']:.0f} ms |",
        f"| event → all {args.clients} clients | {med['all']:.0f} ms | {worst['all']:.0f} ms |",
        "",
        f"Every round reached {min(r['received'] for r in rounds)} of {args.clients} clients. "
        f"{args.clients} clients connected in {result['connect_seconds']:.1f} s.",
        f"notification RSS: {int(result['rss_idle']) / MiB:.0f} MiB idle, "  # type: ignore[call-overload]
        f"{int(result['rss_connected']) / MiB:.0f} MiB with every client connected, "  # type: ignore[call-overload]
        f"peak {int(result['rss_peak']) / MiB:.0f} MiB "  # type: ignore[call-overload]
        f"(≈{(int(result['rss_connected']) - int(result['rss_idle'])) / args.clients / 1024:.0f} KiB per connection).",  # type: ignore[call-overload]
    ]
    return "\n".join(lines)


def rows(result: dict[str, object], args: argparse.Namespace) -> list[Row]:
    """The figures for `make bench`: medians over the rounds (no goal was set for them)."""
    rounds: list[dict[str, float]] = result["rounds"]  # type: ignore[assignment]
    n = args.clients
    per_connection = (int(result["rss_connected"]) - int(result["rss_idle"])) / n / 1024  # type: ignore[call-overload]
    return [
        Row(f"event → p50 of {n} WebSocket clients", _median_ms(rounds, "p50"), "ms"),
        Row(f"event → p99 of {n} WebSocket clients", _median_ms(rounds, "p99"), "ms"),
        Row(f"event → all {n} WebSocket clients", _median_ms(rounds, "all"), "ms"),
        Row("notification memory per WebSocket connection", round(per_connection, 1), "KiB"),
    ]


def _median_ms(rounds: list[dict[str, float]], key: str) -> float:
    return round(statistics.median(r[key] for r in rounds) * 1000, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--processes", type=int, default=2, help="client processes")
    parser.add_argument("--pause", type=float, default=2.0, help="seconds between events")
    parser.add_argument("--json", type=Path, help="write the figures for `make bench` here")
    args = parser.parse_args()
    os.environ.setdefault("ENVIRONMENT", "development")
    result = asyncio.run(bench(args))
    print(report(result, args))
    write_rows(args.json, rows(result, args))


if __name__ == "__main__":
    main()
