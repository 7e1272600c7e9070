"""Kill -9 the real job-processor process again and again while it submits to and follows jobs on
the sandbox Cloudgene simulator, restart it each time, and check that nothing was lost, no job was
submitted twice, and no transition (nor its event) was written twice.

The registry, file-manager and the vault are a small HTTP stand-in (this test is about
job-processor's own process); the remote service is the real simulator, the database and Redis
are real."""

from __future__ import annotations

import asyncio
import collections
import hashlib
import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from secrets import token_hex
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI, Request, Response
from redis.asyncio import Redis
from sqlalchemy import select

from fedimpute_shared.db import utcnow
from fedimpute_shared.embedded import free_port
from job_processor.models import Job, JobStatus, JobStatusHistory, OutboxEvent
from job_processor.passwords import PasswordBox
from sandbox.testdata import make_vcf

from .factories import job_row

S = JobStatus
PANEL = "apps@1000g-phase-3-v5"
KEY = "kill-test-result-password-key-0123456789"


@dataclass
class Upstreams:
    """The registry, file-manager and vault stand-in, on one port."""

    sandbox_url: str
    app_id: str
    token: str
    service_id: uuid.UUID = field(default_factory=uuid.uuid4)
    panel_id: uuid.UUID = field(default_factory=uuid.uuid4)
    vcf: bytes = field(default_factory=make_vcf)
    stored: list[dict[str, Any]] = field(default_factory=list)

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/internal/service-tokens")
        async def token() -> dict[str, Any]:
            return {"access_token": "stand-in", "token_type": "Bearer", "expires_in": 3600}

        @app.get("/internal/services/{ref}/health")
        async def health(ref: str) -> dict[str, Any]:
            return {"status": "healthy", "error": None}

        @app.get("/internal/services/{ref}")
        async def service(ref: str) -> dict[str, Any]:
            return {
                "id": str(self.service_id),
                "slug": "sandbox-michigan",
                "name": "Sandbox Michigan",
                "kind": "michigan",
                "base_url": self.sandbox_url,
                "api_url": None,
                "cloudgene_app_id": self.app_id,
                "requires_credentials": True,
                "credential_type": "api_token",
                "protocol_options": {},
                "workflow_profile": None,
                "is_active": True,
                "panels": [{"id": str(self.panel_id), "slug": "1000g", "remote_id": PANEL}],
            }

        @app.get("/internal/users/{user_id}/service-credentials/{service_id}")
        async def credentials(user_id: str, service_id: str) -> dict[str, Any]:
            return {"credential_type": "api_token", "secret": {"token": self.token}}

        @app.get("/internal/files/{file_id}/content")
        async def content(file_id: str) -> Response:
            return Response(self.vcf, media_type="application/octet-stream")

        @app.post("/internal/files", status_code=201)
        async def store(request: Request) -> dict[str, Any]:
            digest, size = hashlib.sha256(), 0
            async for chunk in request.stream():
                digest.update(chunk)
                size += len(chunk)
            stored = {
                "id": str(uuid.uuid4()),
                "job_id": request.query_params["job_id"],
                "filename": request.query_params["filename"],
                "size": size,
                "sha256": digest.hexdigest(),
            }
            self.stored.append(stored)
            return stored

        return app


@pytest.fixture
def upstreams(sandbox_server) -> Iterator[tuple[Upstreams, str, Any]]:
    michigan = sandbox_server(
        "michigan",
        "cg3",
        timings={"queue_seconds": 0.5, "step_seconds": 0.4, "export_seconds": 0.3},
        max_running_jobs_per_user=10,
    )
    stand_in = Upstreams(michigan.base_url, michigan.info["app_ids"][0], michigan.users[0].token)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(stand_in.app(), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(100):
        if server.started:
            break
        time.sleep(0.05)
    yield stand_in, f"http://127.0.0.1:{port}", michigan
    server.should_exit = True
    thread.join(timeout=10)


class Process:
    """`python -m job_processor serve` with the given environment; killed with SIGKILL."""

    def __init__(self, env: dict[str, str], port: int, log: Any) -> None:
        self.env, self.port, self.log = env, port, log
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "job_processor", "serve"],
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self.starts += 1

    def wait_ready(self, timeout: float = 240) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise AssertionError("job-processor did not start")

    def kill(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


async def test_kill_9_and_restart_loses_nothing_and_submits_once(
    tmp_path, db, database_url, redis_url, token_issuer, upstreams
):
    stand_in, stand_in_url, michigan = upstreams
    box = PasswordBox(__import__("pydantic").SecretStr(KEY))
    jobs = []
    for i in range(4):
        file_id = uuid.uuid4()
        job = job_row(
            name=f"kill test {i}",
            service_id=stand_in.service_id,
            service_slug="sandbox-michigan",
            panel_id=stand_in.panel_id,
            panel_remote_id=PANEL,
            input_file_ids=[file_id],
            inputs=[
                {
                    "file_id": str(file_id),
                    "filename": "chr20.vcf.gz",
                    "size": len(stand_in.vcf),
                    "sha256": None,
                }
            ],
            next_action_at=utcnow() - timedelta(seconds=1),
        )
        job.result_password_encrypted = box.seal(f"pw-{i}-{token_hex(8)}", str(job.id))
        jobs.append(job)
    db.add_all(jobs)
    await db.commit()
    ids = [j.id for j in jobs]

    stream = f"test:events:{token_hex(4)}"
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "REDIS_"))}
    env |= {
        "PORT": str(port),
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "EVENT_STREAM": stream,
        "OUTBOX_RELAY_INTERVAL_SECONDS": "0.1",
        "JWKS_URL": token_issuer.jwks_url,
        "SERVICE_REGISTRY_URL": stand_in_url,
        "FILE_MANAGER_URL": stand_in_url,
        "USER_SERVICE_URL": stand_in_url,
        "ALLOW_PRIVATE_URLS": "true",
        "RESULT_PASSWORD_KEY": KEY,
        "LEASE_SECONDS": "2",
        "WORKER_INTERVAL_SECONDS": "0.1",
        "POLL_INITIAL_SECONDS": "0.2",
        "POLL_MAX_SECONDS": "0.5",
        "SUBMIT_RETRY_SECONDS": "0.2",
        "LOG_JSON": "false",
    }
    log = (tmp_path / "job-processor.log").open("ab")
    process = Process(env, port, log)
    rng = random.Random(12)
    try:
        # Kill it at random instants while jobs are being submitted, followed and collected;
        # the first kills come fast, inside the submission window.
        for delay in (0.3, 0.8, 1.5, 2.5):
            process.start()
            await asyncio.to_thread(process.wait_ready)
            await asyncio.sleep(delay * rng.uniform(0.8, 1.2))
            process.kill()
        process.start()
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            db.expire_all()
            rows = (await db.scalars(select(Job).where(Job.id.in_(ids)))).all()
            if all(r.status in (S.COMPLETED, S.FAILED, S.CANCELLED) for r in rows):
                break
            await asyncio.sleep(0.3)
        await asyncio.sleep(1.0)  # let the relay publish the last events
    finally:
        process.stop()
        log.close()

    db.expire_all()
    rows = {r.id: r for r in (await db.scalars(select(Job).where(Job.id.in_(ids)))).all()}
    assert {r.status for r in rows.values()} == {S.COMPLETED}, {
        r.name: (r.status, r.status_message, r.paused_note) for r in rows.values()
    }
    # submitted once each: one remote job per tag
    remote_tags = collections.Counter()
    for remote_id in {r.remote_id for r in rows.values()}:
        assert remote_id
    async with httpx.AsyncClient(timeout=10) as client:
        page, seen = 1, 0
        while page and seen < 20:
            seen += 1
            listing = (
                await client.get(
                    f"{michigan.base_url}/api/v2/jobs",
                    params={"page": page},
                    headers={"X-Auth-Token": stand_in.token},
                )
            ).json()
            items = listing if isinstance(listing, list) else listing.get("data", [])
            for item in items:
                for job_id in ids:
                    if f"fedimpute-{job_id}" in str(item.get("name", "")):
                        remote_tags[job_id] += 1
            following = listing.get("next") if isinstance(listing, dict) else None
            page = following if isinstance(following, int) and following > page else None
    assert dict(remote_tags) == dict.fromkeys(ids, 1), "a job was submitted twice (or never)"

    # every transition stored once, in order, and its events with it
    for job_id in ids:
        history = (
            await db.scalars(
                select(JobStatusHistory)
                .where(JobStatusHistory.job_id == job_id)
                .order_by(JobStatusHistory.created_at)
            )
        ).all()
        moves = [h.to_status for h in history]
        assert moves[0] == "submitting", moves  # the rows were inserted pending
        assert moves[-1] == "completed", moves
        assert len(moves) == len(set(moves)), f"a transition was written twice: {moves}"
    outbox = (await db.scalars(select(OutboxEvent))).all()
    per_job = collections.Counter(
        (e.payload["job_id"], e.event_type, e.payload.get("status")) for e in outbox
    )
    assert max(per_job.values()) == 1, "an event was written twice"
    assert sum(1 for (_, t, _) in per_job if t == "job.completed") == len(ids)
    # results stored once per result name and job, and recorded on the job
    stored = collections.Counter((s["job_id"], s["filename"]) for s in stand_in.stored)
    for job in rows.values():
        assert len(job.result_file_ids) == len(job.collected) >= 2
        recorded = {str(i) for i in job.result_file_ids}
        assert recorded <= {s["id"] for s in stand_in.stored}
    # nothing lost on the way to Redis: every outbox event is in the stream (at least once)
    redis = Redis.from_url(redis_url)
    try:
        entries = await redis.xrange(stream)
        published = {fields[b"event_id"].decode() for _, fields in entries}
        missing = {str(e.id) for e in outbox} - published
        assert not missing, (
            f"{len(missing)} of {len(outbox)} events never reached the stream; the relay's "
            "lines and who holds advisory locks:\n"
            + await relay_diagnostics(db, tmp_path / "job-processor.log")
        )
        await redis.delete(stream)
    finally:
        await redis.aclose()
    # a result stored by a killed collector may be stored again (at least once), never lost
    assert all(n >= 1 for n in stored.values())


async def relay_diagnostics(db, log_path) -> str:
    """What explains unpublished events: the service's relay/Redis log lines and the sessions
    holding advisory locks in this database (a leaked relay elsewhere would show here)."""
    from sqlalchemy import text

    lines = [
        line
        for line in log_path.read_text(errors="replace").splitlines()
        if any(word in line.lower() for word in ("relay", "redis", "stream", "outbox", "lock"))
    ]
    holders = (
        await db.execute(
            text(
                "SELECT l.pid, l.objid, a.state, a.backend_start, a.client_port FROM pg_locks l"
                " JOIN pg_stat_activity a ON a.pid = l.pid"
                " WHERE l.locktype = 'advisory' AND l.database ="
                " (SELECT oid FROM pg_database WHERE datname = current_database())"
            )
        )
    ).all()
    return "\n".join([*lines[-40:], *(str(tuple(h)) for h in holders)])
