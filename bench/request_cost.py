"""Benchmark: what one request costs inside a service (CPU time, throughput, where it goes).

Every service runs as a real ``python -m <package> serve`` (one uvicorn worker, real
PostgreSQL, real Redis, access logs on at INFO into a file, tokens verified against a JWKS of
:class:`fedimpute_shared.testing.tokens.TokenIssuer`; user-service verifies the tokens it issues
itself). A raw asyncio HTTP/1.1 driver in a separate process (``--drive``, keep-alive
connections, almost no CPU of its own per request) sends a handful of representative requests
straight to the worker:

- CPU ms per request: the service process's CPU time (user + system, psutil) over the run,
  divided by the requests answered (the driver checks every status);
- req/s at concurrency 1 and 20;
- with ``--profile``: py-spy (``--py-spy``, a binary outside the project's environment, e.g.
  ``uv venv /tmp/spy && uv pip install --python /tmp/spy/bin/python py-spy``) samples the worker
  during an extra run of the registry list and each stack is put in one group (middleware, auth,
  database driver, ORM, validation, serialisation, logging, metrics, ...).

Needs PostgreSQL and Redis (127.0.0.1:5432 user postgres, ``--redis-url``). From the
repository root:

    .venv/bin/python bench/request_cost.py --seconds 5 --profile --py-spy /tmp/spy/bin/py-spy

``--json PATH`` also writes one row per request measured against the goals (CPU ms per request:
<= 2 ms for a read, <= 4 ms for a write, against the service's own ``/health`` as its floor
without a query; the registry list's req/s at c=20: >= 400), for ``make bench``; ``--quick``
runs 1 s per concurrency and no profile (about 3 minutes for the six services).
``--profile-case SERVICE:KIND`` profiles another request of the table than the registry list.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import profiling  # bench/profiling.py (the scripts run from bench/)
from processes import free_port, started

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
COMMAND = ".venv/bin/python bench/request_cost.py"
PASSWORD = "violet-Otter-sings-at-dawn-42"


# ------------------------------------------------------------------ the load driver (own process)


READ_GOAL_MS = 2.0  # CPU per small authenticated read (issue 17)
WRITE_GOAL_MS = 4.0  # CPU per small write
LIST_GOAL_RPS = 400.0  # the registry list at concurrency 20

UNIQUE_WIDTH = 14  # "{n}" in a body becomes a unique number of this many digits


async def _one_connection(
    port: int,
    requests: list[bytes],
    deadline: float,
    counts: list[int],
    errors: list[str],
    connection: int,
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    i = 0
    prefix = f"{os.getpid() % 100_000:05d}{connection:02d}"
    try:
        while time.monotonic() < deadline:
            unique = f"{prefix}{i:07d}".encode()
            raw = requests[i % len(requests)].replace(b"{n}", unique)
            i += 1
            writer.write(raw)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            match = re.search(rb"(?i)\r\ncontent-length:\s*(\d+)", head)
            body = await reader.readexactly(int(match[1])) if match else b""
            if status >= 400:
                errors.append(f"{status} {raw.split(b' ')[1].decode()}: {body[:300]!r}")
                return
            counts[0] += 1
    finally:
        writer.close()


async def _drive(
    port: int, requests: list[bytes], concurrency: int, seconds: float
) -> dict[str, Any]:
    counts, errors = [0], []  # type: list[int], list[str]
    started = time.monotonic()
    deadline = started + seconds
    await asyncio.gather(
        *(_one_connection(port, requests, deadline, counts, errors, c) for c in range(concurrency))
    )
    return {"requests": counts[0], "seconds": time.monotonic() - started, "errors": errors[:3]}


def drive_main(spec: str) -> int:
    """``--drive SPEC``: run the load described by SPEC (JSON) and print the result as JSON."""
    job = json.loads(spec)
    requests = [r.encode("latin-1") for r in job["requests"]]
    result = asyncio.run(_drive(job["port"], requests, job["concurrency"], job["seconds"]))
    print(json.dumps(result))
    return 0


def raw_request(method: str, path: str, token: str | None, body: Any = None) -> str:
    """One HTTP/1.1 request as text; ``{n}`` in the body becomes a unique number of
    :data:`UNIQUE_WIDTH` digits per send (so the Content-Length is known here)."""
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
    if token:
        lines.append(f"Authorization: Bearer {token}")
    data = ""
    if body is not None:
        data = json.dumps(body)
        lines.append("Content-Type: application/json")
    length = len(data.replace("{n}", "0" * UNIQUE_WIDTH).encode())
    lines.append(f"Content-Length: {length}")
    return "\r\n".join(lines) + "\r\n\r\n" + data


# ------------------------------------------------------------------ processes


def cpu_seconds(pid: int) -> float:
    import psutil

    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


# ------------------------------------------------------------------ measurements


def calibration_ms() -> float:
    """CPU ms of a fixed pure-Python workload (JSON, dicts, a small sort) in this process: on a
    shared machine CPU time per request inflates with the neighbours' load (caches, SMT
    siblings), and this figure, taken beside the runs, shows by how much."""
    started = time.process_time()
    for i in range(20_000):
        record = {"id": i, "name": f"service-{i}", "tags": sorted(str(i * 7919 % 97))}
        json.loads(json.dumps(record))
    return (time.process_time() - started) * 1000


@dataclass
class Case:
    """One representative request of one service."""

    kind: str  # "list", "get", "create", "health", ...
    method: str
    path: str
    body: Any = None
    auth: bool = True
    token: str | None = None  # instead of the service's usual token (an admin's, for writes)
    write: bool = False  # the goal is <= 4 ms for a write, <= 2 ms for a read

    @property
    def goal_ms(self) -> float:
        return WRITE_GOAL_MS if self.write else READ_GOAL_MS


@dataclass
class Result:
    service: str
    case: Case
    cpu_ms: float = 0.0
    rps1: float = 0.0
    rps20: float = 0.0
    requests: int = 0
    error: str = ""


def drive(port: int, requests: list[str], concurrency: int, seconds: float) -> dict[str, Any]:
    spec = json.dumps(
        {"port": port, "requests": requests, "concurrency": concurrency, "seconds": seconds}
    )
    out = subprocess.run(
        [PY, __file__, "--drive", spec], capture_output=True, text=True, check=True
    ).stdout
    result: dict[str, Any] = json.loads(out)
    if result["errors"]:
        raise RuntimeError("; ".join(result["errors"]))
    return result


def measure(service: str, pid: int, port: int, case: Case, token: str, seconds: float) -> Result:
    """req/s at c=1 and c=20; CPU per request over both runs."""
    request = raw_request(
        case.method, case.path, (case.token or token) if case.auth else None, case.body
    )
    result = Result(service, case)
    try:
        drive(port, [request], 1, min(1.0, seconds / 2))  # warm-up (imports, pools, caches)
        before = cpu_seconds(pid)
        one = drive(port, [request], 1, seconds)
        many = drive(port, [request], 20, seconds)
        spent = cpu_seconds(pid) - before
    except (RuntimeError, subprocess.CalledProcessError) as exc:
        result.error = str(exc)[:300]
        return result
    result.requests = one["requests"] + many["requests"]
    result.cpu_ms = spent * 1000 / max(1, result.requests)
    result.rps1 = one["requests"] / one["seconds"]
    result.rps20 = many["requests"] / many["seconds"]
    return result


# ------------------------------------------------------------------ the profile


# A stack under one of these frames belongs to it whatever it calls (a JSON dump inside the
# access log is logging); checked first, in this order.
OWNERS: list[tuple[str, re.Pattern[str]]] = [
    ("logging (access log line, JSON, redaction)", re.compile(r"logging/|fedimpute_shared/logs")),
    (
        "auth (JWT check, revocation)",
        re.compile(r"fedimpute_shared/auth\.py|/jose/|cryptography|fedimpute_shared/revocation"),
    ),
    ("metrics (prometheus)", re.compile(r"prometheus_client")),
    ("response validation + JSON (FastAPI, pydantic)", re.compile(r"serialize_response")),
]
# Otherwise the deepest frame that matches one of these decides (its own work).
LAYERS: list[tuple[str, re.Pattern[str]]] = [
    ("database driver (asyncpg: protocol, round trips)", re.compile(r"asyncpg/")),
    ("ORM / SQL / row mapping (SQLAlchemy, greenlet)", re.compile(r"sqlalchemy/|greenlet")),
    ("pydantic (model building, validation)", re.compile(r"pydantic")),
    ("dependency solving, request parsing (FastAPI)", re.compile(r"fastapi/dependencies")),
    ("pagination (cursor signing)", re.compile(r"fedimpute_shared/pagination")),
    (
        "service code (handler, mapping rows to responses)",
        re.compile(
            r"(service_registry|user_service|file_manager|job_processor|notification_service"
            r"|monitoring_service)/(?!__main__)"
        ),
    ),
    (
        "middleware (observability, body limit, errors)",
        re.compile(
            r"observability\.py|body_limit|starlette/middleware|fastapi/middleware|telemetry"
        ),
    ),
    (
        "routing, ASGI, HTTP (starlette, uvicorn)",
        re.compile(r"starlette/|uvicorn/protocols|fastapi/"),
    ),
]
IDLE = "event loop, idle threads, start-up frames"


def profile(
    py_spy: str, pid: int, port: int, request: str, seconds: float, keep: Path | None = None
) -> tuple[Counter[str], Counter[str]]:
    """py-spy samples the worker while the driver runs ``request`` at concurrency 20: the
    samples per group and per leaf frame (the collapsed stacks are also written to ``keep``)."""

    def load() -> None:
        time.sleep(0.5)
        drive(port, [request], 20, seconds)

    groups: Counter[str] = Counter()
    leaves: Counter[str] = Counter()
    for frames, count in profiling.record(py_spy, pid, seconds, load, rate=500, keep=keep):
        groups[profiling.group_of(frames, OWNERS, LAYERS, IDLE)] += count
        leaves[re.sub(r":\d+\)$", ")", frames[-1])] += count
    return groups, leaves


# ------------------------------------------------------------------ the fleet under test


def _post(url: str, body: Any, token: str | None = None) -> Any:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(  # noqa: S310 (our own loopback URL)
        url, json.dumps(body).encode(), headers, method="POST"
    )
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 (loopback)
        return json.loads(response.read() or b"null")


def registry_cases(base: str, admin: str) -> list[Case]:
    """20 services (the list's page), one with a panel; the create is a reference panel."""
    first = None
    for i in range(20):
        created = _post(
            f"{base}/services",
            {
                "name": f"Bench service {i:02d}",
                "slug": f"bench-{i:02d}",
                "kind": "michigan",
                "base_url": f"https://impute-{i}.example.org",
                "cloudgene_app_id": "imputationserver2",
                "location": {"country": "za", "city": "Cape Town"},
            },
            admin,
        )
        first = first or created
    assert first is not None
    return [
        Case("list 20", "GET", "/services?limit=20"),
        Case("get by id", "GET", f"/services/{first['id']}"),
        Case(
            "create (panel)",
            "POST",
            "/reference-panels",
            {
                "service_id": first["id"],
                "slug": "p-{n}",
                "remote_id": "apps@p@1",
                "display_name": "Bench panel",
                "populations": ["afr"],
                "build": "hg38",
            },
            token=admin,
            write=True,
        ),
        Case("health", "GET", "/health", auth=False),
    ]


SERVICES: dict[str, dict[str, Any]] = {
    "service-registry": {"package": "service_registry", "module": "service_registry.main"},
    "user-service": {"package": "user_service", "module": "user_service.main"},
    "file-manager": {"package": "file_manager", "module": "file_manager.main"},
    "job-processor": {"package": "job_processor", "module": "job_processor.main"},
    "notification": {"package": "notification_service", "module": "notification_service.main"},
    "monitoring": {"package": "monitoring_service", "module": "monitoring_service.main"},
}


def cases_for(name: str, base: str, issuer: Any) -> tuple[list[Case], str]:
    """The service's requests and the token they are sent with (after seeding what they read)."""
    user = issuer.access_token(roles=["researcher"], expires_in=7200)
    if name == "service-registry":
        admin = issuer.access_token(roles=["admin"], expires_in=7200)
        return registry_cases(base, admin), user
    if name == "user-service":
        _post(
            f"{base}/auth/register",
            {
                "username": "ada",
                "email": "ada@example.org",
                "password": PASSWORD,
                "full_name": "Ada Lovelace",
                "institution": "UCT",
                "country": "za",
            },
        )
        own = _post(f"{base}/auth/login", {"login": "ada", "password": PASSWORD})["access_token"]
        for i in range(5):
            _post(f"{base}/users/me/api-tokens", {"name": f"t{i}", "scopes": ["jobs:read"]}, own)
        return [
            Case("list (my API tokens)", "GET", "/users/me/api-tokens"),
            Case("get (me)", "GET", "/users/me"),
            Case(
                "create (API token)",
                "POST",
                "/users/me/api-tokens",
                {"name": "t-{n}", "scopes": ["jobs:read"]},
                write=True,
            ),
            Case("health", "GET", "/health", auth=False),
        ], own
    if name == "file-manager":
        return [
            Case("list 20 (none yet)", "GET", "/files?limit=20"),
            Case("get (my usage)", "GET", "/files/usage"),
            Case("health", "GET", "/health", auth=False),
        ], user
    if name == "job-processor":
        return [
            Case("list 20 (none yet)", "GET", "/jobs?limit=20"),
            Case("get (my stats)", "GET", "/jobs/stats"),
            Case("list templates", "GET", "/job-templates?limit=20"),
            Case("health", "GET", "/health", auth=False),
        ], user
    if name == "notification":
        return [
            Case("list 20 (none yet)", "GET", "/notifications?limit=20"),
            Case("get (unread count)", "GET", "/notifications/unread-count"),
            Case("get (preferences)", "GET", "/notifications/preferences"),
            Case("write (mark all read)", "POST", "/notifications/read-all", write=True),
            Case("health", "GET", "/health", auth=False),
        ], user
    if name == "monitoring":
        admin = issuer.access_token(roles=["admin"], expires_in=7200)
        return [
            Case("list 20 alerts (none yet)", "GET", "/monitoring/alerts?limit=20", token=admin),
            Case("public status", "GET", "/status", auth=False),
            Case("health", "GET", "/health", auth=False),
        ], user
    raise KeyError(name)


# ------------------------------------------------------------------ the run


async def _databases(names: list[str], stack: Any) -> dict[str, str]:
    import importlib

    from fedimpute_shared.testing.database import migrated_database
    from fedimpute_shared.testing.infra import postgres_admin_url

    admin_url = postgres_admin_url(ROOT / "var" / "test")
    urls = {}
    for name in names:
        module = importlib.import_module(SERVICES[name]["module"])
        urls[name] = await stack.enter_async_context(
            migrated_database(admin_url, f"bench-cost-{name}", module.MIGRATIONS_DIR)
        )
    return urls


async def run(args: argparse.Namespace) -> tuple[list[Result], Any]:
    from contextlib import AsyncExitStack

    from fedimpute_shared.testing.tokens import TokenIssuer

    issuer = TokenIssuer()
    results: list[Result] = []
    profiled: Any = None
    args.calibration = [calibration_ms()]
    service_name, _, kind = args.profile_case.partition(":")
    async with AsyncExitStack() as stack:
        urls = await _databases(args.services, stack)
        for name in args.services:
            port = free_port()
            env = {
                "DATABASE_URL": urls[name],
                "REDIS_URL": args.redis_url,
                "JWKS_URL": issuer.jwks_url,
                "LOG_LEVEL": "INFO",  # access logs on: they are part of every request's cost
                "ENVIRONMENT": "development",
                "OUTBOX_RELAY_ENABLED": "false",
            }
            if name == "user-service":
                env["JWKS_URL"] = f"http://127.0.0.1:{port}/.well-known/jwks.json"
                env["JWT_SIGNING_KEY_FILE"] = str(Path(tempfile.mkdtemp()) / "key.pem")
            package = SERVICES[name]["package"]
            server = [PY, "-m", package, "serve"]
            with started(
                server, {**env, "PORT": str(port)}, f"http://127.0.0.1:{port}/health"
            ) as pid:
                base = f"http://127.0.0.1:{port}"
                cases, token = await asyncio.to_thread(cases_for, name, base, issuer)
                for case in cases:
                    result = await asyncio.to_thread(
                        measure, name, pid, port, case, token, args.seconds
                    )
                    print(
                        f"{name:17} {case.kind:26} {result.cpu_ms:6.2f} ms CPU "
                        f"{result.rps1:6.0f} req/s c=1 {result.rps20:6.0f} c=20 {result.error}",
                        file=sys.stderr,
                    )
                    results.append(result)
                profiled_case = next((c for c in cases if c.kind == kind), None)
                if args.profile and name == service_name and profiled_case is not None:
                    request = raw_request(
                        profiled_case.method,
                        profiled_case.path,
                        profiled_case.token or token if profiled_case.auth else None,
                        profiled_case.body,
                    )
                    profiled = await asyncio.to_thread(
                        profile,
                        args.py_spy,
                        pid,
                        port,
                        request,
                        args.seconds * 2,
                        args.profile_stacks,
                    )
    issuer.close()
    args.calibration.append(calibration_ms())
    return results, profiled


def report(args: argparse.Namespace, results: list[Result], profiled: Any) -> str:
    command = f"{COMMAND} --seconds {args.seconds:g}" + (
        f" --profile --py-spy {args.py_spy} --profile-case '{args.profile_case}'"
        if args.profile
        else ""
    )
    load = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    lines = [
        f"    {command}",
        "",
        f"Python {platform.python_version()}, {os.cpu_count()} CPUs; load average at the end: "
        f"{load} (1/5/15 min). Calibration (a fixed Python workload, CPU ms; lower is a "
        f"quieter machine): {' / '.join(f'{c:.0f}' for c in args.calibration)} ms "
        "(before / after the runs).",
        "",
        "| service | request | CPU / request | req/s c=1 | req/s c=20 |",
        "|---|---|---:|---:|---:|",
    ]
    for r in results:
        if r.error:
            lines.append(
                f"| {r.service} | {r.case.kind} `{r.case.method} {r.case.path.split('?')[0]}` "
                f"| failed: {r.error[:80]} | | |"
            )
            continue
        path = r.case.path if len(r.case.path) < 40 else r.case.path[:37] + "..."
        lines.append(
            f"| {r.service} | {r.case.kind} `{r.case.method} {path}` | {r.cpu_ms:.2f} ms "
            f"| {r.rps1:,.0f} | {r.rps20:,.0f} |"
        )
    if profiled:
        groups, leaves = profiled
        total = sum(groups.values()) or 1
        lines += [
            "",
            f"Where `{args.profile_case}` spends its CPU (py-spy samples at c=20; "
            "a stack under logging, auth, metrics or the response serialisation counts there, "
            "any other in the layer of its deepest recognised frame):",
            "",
            "| group | share |",
            "|---|---:|",
        ]
        order = [name for name, _ in OWNERS + LAYERS] + [IDLE]
        for name in order:
            if groups[name]:
                lines.append(f"| {name} | {100 * groups[name] / total:.0f}% |")
        lines += [
            "",
            "Top leaf frames: "
            + "; ".join(f"{leaf} {100 * n / total:.1f}%" for leaf, n in leaves.most_common(12)),
        ]
    return "\n".join(lines) + "\n"


def json_rows(results: list[Result]) -> list[dict[str, Any]]:
    """The ``make bench`` rows: each request's CPU against its goal, with the service's own
    ``/health`` (routing, middleware, access log, metrics: everything but the query and the
    handler) as its limit; and the registry list's req/s at c=20 against its goal, with the
    registry's ``/health`` req/s at c=20 as the ceiling."""
    health = {r.service: r for r in results if r.case.kind == "health" and not r.error}
    rows: list[dict[str, Any]] = []
    for r in results:
        if r.case.kind == "health":
            continue
        floor = health.get(r.service)
        value = None if r.error else round(r.cpu_ms, 2)
        limit_value = round(floor.cpu_ms, 2) if floor else None
        rows.append(
            _row(
                f"{r.service} CPU per request: {r.case.kind} {r.case.method} "
                + re.sub(r"[0-9a-f-]{36}", "{id}", r.case.path.split("?")[0]),
                value,
                "ms",
                "the service's GET /health (its floor without a query)",
                limit_value,
                f"<= {r.case.goal_ms:g} ms",
                None if value is None else value <= r.case.goal_ms,
            )
        )
        if r.service == "service-registry" and r.case.kind == "list 20":
            rps = None if r.error else round(r.rps20)
            ceiling = round(floor.rps20) if floor else None
            rows.append(
                _row(
                    "service-registry GET /services?limit=20 req/s at concurrency 20",
                    rps,
                    "req/s",
                    "the registry's GET /health req/s at concurrency 20",
                    ceiling,
                    f">= {LIST_GOAL_RPS:g} req/s",
                    None if rps is None else rps >= LIST_GOAL_RPS,
                )
            )
    return rows


def _row(
    path: str,
    value: float | None,
    unit: str,
    limit: str,
    limit_value: float | None,
    goal: str,
    met: bool | None,
) -> dict[str, Any]:
    ratio = round(value / limit_value, 2) if value is not None and limit_value else None
    return {
        "path": path,
        "value": value,
        "unit": unit,
        "limit": limit,
        "limit_value": limit_value,
        "ratio": ratio,
        "goal": goal,
        "met": met,
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--drive", help=argparse.SUPPRESS)
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--services", nargs="+", default=list(SERVICES), choices=list(SERVICES))
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--profile-stacks", type=Path, help="write py-spy's collapsed stacks")
    parser.add_argument(
        "--profile-case",
        default="service-registry:list 20",
        help="SERVICE:KIND, the request --profile samples (a kind of the table's request column)",
    )
    parser.add_argument("--py-spy", default=shutil.which("py-spy"), help="the py-spy binary")
    parser.add_argument(
        "--redis-url", default=os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/2")
    )
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "benchmarks-request-cost.md")
    parser.add_argument("--json", type=Path, help="write the rows against the goals here")
    parser.add_argument(
        "--quick", action="store_true", help="1 s per run and no profile (for make bench)"
    )
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.profile = 1.0, False
    if args.drive:
        return drive_main(args.drive)
    if args.profile and not args.py_spy:
        print("--profile needs py-spy (--py-spy PATH)", file=sys.stderr)
        return 2
    results, profiled = asyncio.run(run(args))
    text = report(args, results, profiled)
    print(text)
    if not args.quick:  # the quick profile's figures are too rough for the full report
        args.output.write_text("# Request cost benchmark (the last run)\n\nReproduce:\n\n" + text)
    if args.json:
        args.json.write_text(json.dumps(json_rows(results), indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
