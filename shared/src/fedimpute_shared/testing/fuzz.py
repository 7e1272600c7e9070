"""API fuzzing of a service against its own OpenAPI document, as a bounded test.

:func:`fuzz_app` serves the app over real HTTP (uvicorn, on the test's event loop, lifespan
run) and points schemathesis at its ``/openapi.json`` once per identity (a user's token, an
admin's...). Schemathesis runs its coverage phase (boundary and invalid values of every
parameter and body field), its fuzzing phase (random valid and invalid requests) and its
stateful phase (chains of operations following the links it infers: create, then read, update,
delete what was created), and checks every response:

- ``not_a_server_error``: no 5xx, ever;
- ``status_code_conformance`` and ``content_type_conformance``: the status and the media type
  are the ones the document declares for the operation;
- ``response_schema_conformance``: the body matches the declared schema.

A run is bounded and repeatable: ``max_examples`` per operation and phase, a fixed seed,
derandomized generation, no example database on disk, Hypothesis' deadline off (a slow shared
CI machine is not a defect). The report names every distinct failure with the curl command that
reproduces it.

A service's fuzz test is a few lines (see ``docs/service-guide.md``, *Tests*)::

    async def test_fuzz(make_app, db, admin, researcher):
        report = await fuzz_app(make_app(), {"admin": admin, "researcher": researcher})
        report.assert_clean()
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import multiprocessing
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

import uvicorn
from fastapi import FastAPI

from fedimpute_shared.embedded import free_port

__all__ = [
    "CHECKS",
    "PHASES",
    "FuzzFailure",
    "FuzzOptions",
    "FuzzReport",
    "fuzz_app",
    "fuzz_url",
    "serve_live",
]

T = TypeVar("T")

CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
)
PHASES = ("coverage", "fuzzing", "stateful")
BINARY_MEDIA_TYPES = ("application/offset+octet-stream",)


@dataclass(frozen=True)
class FuzzOptions:
    """How much to generate. The defaults keep a service's run within tens of seconds."""

    max_examples: int = 25  # per operation and phase
    seed: int = 20261129
    phases: tuple[str, ...] = PHASES
    stateful_max_steps: int = 20
    # Phases for every identity after the first (the first runs ``phases``): their requests
    # mostly meet the same validation, so a short fuzzing run shows what differs for them.
    other_phases: tuple[str, ...] = ("fuzzing",)
    other_max_examples: int = 10
    # Path parameter -> ids of objects the test created: drawn 3 times in 4, so requests reach
    # real objects (a random id is a 404 that tests nothing behind it).
    known: Mapping[str, Sequence[str | int]] = field(default_factory=dict)
    # Operation labels ("POST /services/{id}/sync-panels") not to call, each with its reason
    # in the test module (an operation that reaches outside the machine, ...).
    exclude: tuple[str, ...] = ()
    openapi_path: str = "/openapi.json"
    request_timeout: float = 30.0


@dataclass(frozen=True)
class FuzzFailure:
    identity: str
    phase: str
    operation: str
    check: str
    title: str
    message: str
    reproduce: str

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.operation, self.check, self.title)


@dataclass
class FuzzReport:
    failures: list[FuzzFailure] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # the run itself broke (schema, network)
    requests: int = 0
    operations: set[str] = field(default_factory=set)
    seconds: float = 0.0
    fuzzer_cpu_seconds: float = 0.0  # the fuzzer's process
    server_cpu_seconds: float = 0.0  # the test process serving the app (fuzz_app only)

    def distinct(self) -> list[FuzzFailure]:
        """One failure per (operation, check, title): the first seen, with its reproduction."""
        seen: dict[tuple[str, str, str], FuzzFailure] = {}
        for failure in self.failures:
            seen.setdefault(failure.key, failure)
        return sorted(seen.values(), key=lambda f: f.key)

    def summary(self) -> str:
        lines = [
            f"{len(self.operations)} operations, {self.requests} requests in {self.seconds:.1f} s "
            f"(CPU: fuzzer {self.fuzzer_cpu_seconds:.1f} s, server {self.server_cpu_seconds:.1f} s); "
            f"{len(self.distinct())} distinct failures, {len(self.errors)} errors"
        ]
        for failure in self.distinct():
            lines += [
                f"- [{failure.identity}/{failure.phase}] {failure.operation}: "
                f"{failure.check}: {failure.title}",
                "    " + failure.message.strip().replace("\n", "\n    ")[:1500],
                "    " + failure.reproduce[:1500],
            ]
        lines += [f"! {error}" for error in self.errors]
        return "\n".join(lines)

    def assert_clean(self) -> None:
        """Fail the test with every distinct failure, or when nothing was exercised."""
        if not self.requests or not self.operations:
            raise AssertionError("the fuzzer sent no request\n" + self.summary())
        if self.failures or self.errors:
            raise AssertionError("\n" + self.summary())


@contextlib.asynccontextmanager
async def serve_live(app: FastAPI) -> AsyncIterator[str]:
    """Serve ``app`` with uvicorn on a free loopback port of this event loop; yield its URL."""
    port = free_port()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_config=None,
        access_log=False,
        lifespan="on",
        server_header=False,
        timeout_graceful_shutdown=5,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    deadline = time.monotonic() + 30
    while not server.started:
        if task.done():
            task.result()  # start-up failed: raise its error here
            raise RuntimeError("the server stopped before it started")
        if time.monotonic() > deadline:
            raise TimeoutError("the server did not start in 30 s")
        await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


async def fuzz_app(
    app: FastAPI,
    identities: Mapping[str, Mapping[str, str]],
    options: FuzzOptions | None = None,
) -> FuzzReport:
    """Fuzz ``app`` (served live) once per identity: ``{name: request headers}``."""
    access = logging.getLogger("fedimpute.access")
    level = access.level
    access.setLevel(logging.WARNING)  # thousands of lines nobody reads; failures are reported
    plain = {name: dict(headers) for name, headers in identities.items()}
    cpu = time.process_time()
    try:
        async with serve_live(app) as base_url:
            report = await in_child_process(fuzz_url, base_url, plain, options or FuzzOptions())
        report.server_cpu_seconds = time.process_time() - cpu
        return report
    finally:
        access.setLevel(level)


async def in_child_process(function: Callable[..., T], *args: Any) -> T:
    """Run ``function(*args)`` in a fresh (spawned) Python process and await its result.

    The fuzzer runs beside the server, not in one of its threads: the two then use both cores
    instead of sharing one interpreter lock, and the fuzzer's code generation (Hypothesis'
    stateful machines) cannot meet CPython 3.11's thread-unsafe AST recursion counter
    ("AST constructor recursion depth mismatch") while the server compiles something too.
    """
    loop = asyncio.get_running_loop()
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        return await loop.run_in_executor(pool, function, *args)


def fuzz_url(
    base_url: str,
    identities: Mapping[str, Mapping[str, str]],
    options: FuzzOptions,
    *,
    spec: dict[str, Any] | None = None,
) -> FuzzReport:
    """Run schemathesis against a served API (blocking: call it in another process or thread).

    ``spec`` fuzzes that document instead of the one at ``base_url + options.openapi_path``
    (the gateway's merged document, a spec edited for a test).
    """
    report = FuzzReport()
    started, cpu = time.monotonic(), time.process_time()
    for index, (identity, headers) in enumerate(identities.items()):
        if index:
            options = replace(
                options, phases=options.other_phases, max_examples=options.other_max_examples
            )
        _run_one(base_url, identity, dict(headers), options, spec, report)
    report.seconds = time.monotonic() - started
    report.fuzzer_cpu_seconds = time.process_time() - cpu
    return report


def _config(base_url: str, headers: dict[str, str], options: FuzzOptions) -> Any:
    import schemathesis

    generation = {
        "max-examples": options.max_examples,
        "deterministic": True,
        "database": "none",
    }
    checks: dict[str, Any] = {"enabled": False} | {name: {"enabled": True} for name in CHECKS}
    phases: dict[str, Any] = {
        name: {"enabled": name in options.phases}
        for name in ("examples", "coverage", "fuzzing", "stateful")
    }
    phases["stateful"]["max-steps"] = options.stateful_max_steps
    # Not every path with every other HTTP method: a 405 is Starlette's, the same everywhere.
    phases["coverage"]["unexpected-methods"] = []
    data: dict[str, Any] = {
        "seed": options.seed,
        "base-url": base_url,
        "headers": headers,
        "workers": 1,
        "continue-on-failure": True,
        "request-timeout": options.request_timeout,
        "generation": generation,
        "checks": checks,
        "phases": phases,
        "suppress-health-check": ["all"],
        "cache": {"enabled": False},  # nothing written into the checkout
        "warnings": False,
    }
    if options.known:
        data["dictionaries"] = {
            f"known-{name}": {"values": list(values)} for name, values in options.known.items()
        }
        data["parameters"] = {
            f"path.{name}": {"dictionary": f"known-{name}", "probability": 0.75}
            for name in options.known
        }
    if options.exclude:
        data["operations"] = [
            {"include-name": label, "enabled": False} for label in options.exclude
        ]
    return schemathesis.Config.from_dict(data)


def _run_one(
    base_url: str,
    identity: str,
    headers: dict[str, str],
    options: FuzzOptions,
    spec: dict[str, Any] | None,
    report: FuzzReport,
) -> None:
    import schemathesis
    from schemathesis.engine import Status, events, from_schema

    config = _config(base_url, headers, options)
    # Bodies that are bytes under another name (tus' PATCH body): sent like octet-stream.
    schemathesis.serializer.alias(list(BINARY_MEDIA_TYPES), "application/octet-stream")
    if spec is None:
        schema = schemathesis.openapi.from_url(base_url + options.openapi_path, config=config)
    else:
        schema = schemathesis.openapi.from_dict(spec, config=config)
    for event in from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished):
            if event.status == Status.SKIP:
                continue
            recorder = event.recorder
            report.operations.add(recorder.label)
            report.requests += len(recorder.interactions)
            _collect(report, identity, event.phase.value, recorder.label, recorder.checks)
        elif isinstance(event, events.NonFatalError):
            report.errors.append(f"[{identity}] {event.label}: {event.info.format()}")
        elif isinstance(event, events.FatalError):
            report.errors.append(f"[{identity}] fatal: {event.exception!r}")


def _collect(
    report: FuzzReport,
    identity: str,
    phase: str,
    label: str,
    checks: Mapping[str, Iterable[Any]],
) -> None:
    from schemathesis.engine import Status

    for nodes in checks.values():
        for node in nodes:
            if node.status != Status.FAILURE or node.failure_info is None:
                continue
            failure = node.failure_info.failure
            report.failures.append(
                FuzzFailure(
                    identity=identity,
                    phase=phase,
                    operation=failure.operation or label,
                    check=node.name,
                    title=failure.title,
                    message=failure.message,
                    reproduce=node.failure_info.code_sample,
                )
            )
