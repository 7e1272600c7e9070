"""The workers: submitter, poller (with cancel) and results collector.

Each round claims due jobs with ``FOR UPDATE SKIP LOCKED`` and writes a lease on them in the
same short transaction, so several replicas never take the same job, and a replica killed
mid-work leaves only a lease that expires (``LEASE_SECONDS``): the job is then picked up again.
The remote call happens outside any transaction; its outcome is written back only while the
lease is still ours.

- **Never submitted twice**: ``submit_attempts`` is committed *before* the remote call. A job
  with an attempt behind it (a timeout, a crash between the remote's "accepted" and our commit)
  is looked up remotely by its tag (``adapter.find``) before any new submission.
- **Transient is not failure**: ``RemoteUnavailable`` and our own upstreams being down back off
  and leave a visible note (``paused_note``); a per-service circuit breaker, or the registry
  saying the service is unhealthy, pauses its jobs without calling it at all.
- **Adaptive polling**: ``poll_initial_seconds`` after a change, growing by
  ``poll_backoff_factor`` while nothing changes, capped at ``poll_max_seconds``.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, cast

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from fedimpute_shared.db import session_scope, utcnow
from job_processor.adapters.base import (
    Adapter,
    AdapterError,
    AuthFailed,
    ByteStream,
    Credentials,
    InputFile,
    JobSpec,
    NotSubmittable,
    RemoteNotFound,
    RemoteRejected,
    RemoteResult,
    RemoteStatus,
    RemoteUnavailable,
    ResultUnreadable,
    ServiceTarget,
    Submission,
)
from job_processor.clients import UpstreamError, Upstreams
from job_processor.config import Settings
from job_processor.jobs import states
from job_processor.models import Job, JobStatus
from job_processor.passwords import PasswordBox

logger = logging.getLogger(__name__)
S = JobStatus
AdapterLookup = Callable[[str], Adapter]
_UNHEALTHY = ("unhealthy", "timeout")
_HEALTH_TTL = 10.0
# At most this many batches' worth of polls may still run in the background (a hanging
# service): past it, rounds claim fewer jobs until they drain.
_STRAGGLER_BATCHES = 5


class _Stop(Exception):
    """The job cannot go on for now; ``note`` says why and ``delay`` when to look again."""

    def __init__(self, note: str, delay: float) -> None:
        super().__init__(note)
        self.note = note
        self.delay = delay


class _Fail(Exception):
    """The job cannot succeed: fail it with this message."""


@dataclass
class _Breaker:
    failures: int = 0
    open_until: float = 0.0
    note: str = ""


@dataclass
class _Remote:
    """What a round needs to talk to a job's service."""

    target: ServiceTarget
    creds: Credentials
    adapter: Adapter
    service: dict[str, Any]


@dataclass
class Workers:
    sessionmaker: async_sessionmaker[AsyncSession]
    settings: Settings
    upstreams: Upstreams
    box: PasswordBox
    adapters: AdapterLookup
    name: str = field(default_factory=lambda: f"jp-{uuid.uuid4().hex[:12]}")
    _breakers: dict[uuid.UUID, _Breaker] = field(default_factory=dict)
    _slots: dict[uuid.UUID, asyncio.Semaphore] = field(default_factory=dict)
    _health: dict[uuid.UUID, tuple[float, dict[str, Any] | None]] = field(default_factory=dict)
    # Short-lived lookups shared by a round's jobs: service id -> record, (owner, service) ->
    # stored credentials. Each entry is the (shared) task fetching it, so concurrent jobs of one
    # service wait for one request instead of each making their own.
    _services: dict[Hashable, tuple[float, asyncio.Task[Any]]] = field(default_factory=dict)
    _credentials: dict[Hashable, tuple[float, asyncio.Task[Any]]] = field(default_factory=dict)
    # Polls that outlived their round's deadline, still running (and holding their leases).
    _stragglers: set[asyncio.Task[None]] = field(default_factory=set)

    # ------------------------------------------------------------------ rounds

    async def submit_due(self) -> int:
        """Send pending jobs (and reconcile ones whose submission answer was lost)."""
        ids = await self._claim(
            or_(
                Job.status.in_((S.PENDING, S.SUBMITTING)),
                and_(Job.status == S.CANCELLING, Job.remote_id.is_(None)),
            ),
            move_pending=True,
        )
        await self._each(ids, self._submit)
        return len(ids)

    async def poll_due(self) -> int:
        """Follow submitted jobs (and send the cancels asked for).

        The round returns after ``poll_round_seconds`` at the latest: polls still waiting on a
        slow service go on in the background (their leases keep other rounds and replicas off
        those jobs, and they write back when they end), so the other services' jobs are polled
        again on time instead of after the slow one's remote timeout.
        """
        room = self.settings.worker_batch_size * _STRAGGLER_BATCHES - len(self._stragglers)
        if room <= 0:
            return 0
        ids = await self._claim(
            and_(
                Job.status.in_((S.QUEUED, S.RUNNING, S.CANCELLING)),
                Job.remote_id.is_not(None),
                Job.results_ready.is_(False),
            ),
            limit=min(self.settings.worker_batch_size, room),
        )
        if not ids:
            return 0
        polls = {asyncio.ensure_future(self._guarded(self._poll, i)) for i in ids}
        _, late = await asyncio.wait(polls, timeout=self.settings.poll_round_seconds)
        if late:
            logger.warning(
                "poll round past its deadline; its slow polls go on in the background",
                extra={"late": len(late)},
            )
        for task in late:
            self._stragglers.add(task)
            task.add_done_callback(self._stragglers.discard)
        return len(ids)

    async def aclose(self) -> None:
        """Stop polls still running in the background (shutdown): their leases expire and the
        jobs are polled again, as after a crash."""
        for task in list(self._stragglers):
            task.cancel()
        await asyncio.gather(*self._stragglers, return_exceptions=True)

    async def collect_due(self) -> int:
        """Store the results of jobs the remote service finished."""
        ids = await self._claim(
            and_(Job.status.in_((S.QUEUED, S.RUNNING)), Job.results_ready.is_(True))
        )
        await self._each(ids, self._collect)
        return len(ids)

    async def run_once(self) -> int:
        """One round of each (tests and operators' scripts)."""
        return await self.submit_due() + await self.poll_due() + await self.collect_due()

    # ------------------------------------------------------------------ leases

    async def _claim(
        self, condition: Any, *, move_pending: bool = False, limit: int | None = None
    ) -> list[uuid.UUID]:
        now = utcnow()
        async with session_scope(self.sessionmaker) as session:
            stmt = (
                select(Job)
                .where(
                    condition,
                    Job.next_action_at <= now,
                    or_(Job.lease_expires_at.is_(None), Job.lease_expires_at < now),
                )
                .order_by(Job.next_action_at)
                .limit(limit or self.settings.worker_batch_size)
                .with_for_update(skip_locked=True)
            )
            jobs = list((await session.scalars(stmt)).all())
            for job in jobs:
                job.lease_owner = self.name
                job.lease_expires_at = now + timedelta(seconds=self.settings.lease_seconds)
                if move_pending and job.status is S.PENDING:
                    await states.move(session, job, S.SUBMITTING)
            return [job.id for job in jobs]

    async def _each(
        self, ids: list[uuid.UUID], work: Callable[[uuid.UUID], Awaitable[None]]
    ) -> None:
        await asyncio.gather(*(self._guarded(work, i) for i in ids))

    async def _guarded(
        self, work: Callable[[uuid.UUID], Awaitable[None]], job_id: uuid.UUID
    ) -> None:
        try:
            await work(job_id)
        except Exception:
            # Never let one job stop the round; its lease expires and it is tried again.
            logger.exception("job worker error", extra={"job_id": str(job_id)})

    async def _load(self, session: AsyncSession, job_id: uuid.UUID) -> Job | None:
        """The job, locked, if our lease on it still holds."""
        job = await session.scalar(
            select(Job)
            .where(Job.id == job_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        if job is None or job.lease_owner != self.name:
            logger.warning("lease lost", extra={"job_id": str(job_id)})
            return None
        return job

    def _release(self, job: Job, delay: float | None) -> None:
        job.lease_owner = None
        job.lease_expires_at = None
        if job.status not in states.FINAL:
            job.next_action_at = utcnow() + timedelta(seconds=delay or 0)

    async def _snapshot(self, job_id: uuid.UUID) -> Job | None:
        async with session_scope(self.sessionmaker) as session:
            job = await session.get(Job, job_id)
            if job is None or job.lease_owner != self.name:
                return None
            session.expunge(job)
            return job

    async def _write(
        self, job_id: uuid.UUID, change: Callable[[AsyncSession, Job], Awaitable[float | None]]
    ) -> None:
        """Apply ``change`` to the locked job and release the lease (``change`` returns the delay
        before the next action)."""
        async with session_scope(self.sessionmaker) as session:
            job = await self._load(session, job_id)
            if job is None:
                return
            delay = await change(session, job)
            self._release(job, delay)

    async def _pause(self, job_id: uuid.UUID, note: str, delay: float) -> None:
        async def change(session: AsyncSession, job: Job) -> float:
            job.paused_note = note
            return delay

        await self._write(job_id, change)

    async def _fail(self, job_id: uuid.UUID, message: str) -> None:
        async def change(session: AsyncSession, job: Job) -> None:
            if job.status is S.CANCELLING:
                await states.move(session, job, S.CANCELLED, message=f"cancelled; also: {message}")
            elif job.status not in states.FINAL:
                await states.move(session, job, S.FAILED, message=message)

        await self._write(job_id, change)

    # ------------------------------------------------------------------ the job's service

    async def _cached(
        self,
        cache: dict[Hashable, tuple[float, asyncio.Task[Any]]],
        key: Hashable,
        fetch: Callable[[], Awaitable[Any]],
    ) -> Any:
        """``fetch()``, reused for ``upstream_cache_seconds`` by every caller of the same key.

        Only answers are kept: an error or a "not found" (None) is dropped at once, so the next
        job asks again (a deleted service or removed credentials are never remembered).
        """
        ttl = self.settings.upstream_cache_seconds
        if ttl <= 0:
            return await fetch()
        now = time.monotonic()
        entry = cache.get(key)
        if entry is None or entry[0] <= now:
            task = asyncio.ensure_future(fetch())
            # A fetch whose waiters all went away (a round's deadline) must not log its error.
            task.add_done_callback(lambda t: t.cancelled() or t.exception())
            entry = (now + ttl, task)
            cache[key] = entry
        try:
            # shield: one waiter cancelled (a deadline) does not cancel the others' fetch.
            value = await asyncio.shield(entry[1])
        except BaseException:
            if cache.get(key) is entry:
                del cache[key]
            raise
        if value is None and cache.get(key) is entry:
            del cache[key]
        return value

    def _forget_credentials(self, job: Job) -> None:
        """The remote refused them: the next use asks the vault again (a fixed token)."""
        self._credentials.pop((job.owner_id, job.service_id), None)

    async def _remote(self, job: Job) -> _Remote:
        label = job.service_slug
        try:
            service = await self._cached(
                self._services,
                job.service_id,
                lambda: self.upstreams.registry.service(job.service_id),
            )
        except UpstreamError as exc:
            raise _Stop(f"the service registry cannot be reached ({exc.detail})", 30) from exc
        if service is None:
            raise _Fail(f"the service {label} no longer exists in the registry")
        target = ServiceTarget.from_registry(service)
        creds = Credentials.none()
        if service.get("requires_credentials"):
            try:
                stored = await self._cached(
                    self._credentials,
                    (job.owner_id, job.service_id),
                    lambda: self.upstreams.vault.credentials(job.owner_id, job.service_id),
                )
            except UpstreamError as exc:
                raise _Stop(f"the credential vault cannot be reached ({exc.detail})", 30) from exc
            if stored is None:
                raise _Fail(
                    f"your credentials for {label} are gone: store them again and retry the job"
                )
            creds = Credentials.from_vault(stored)
        try:
            adapter = self.adapters(target.service_type)
        except (KeyError, LookupError):
            raise _Fail(f"{label} uses a protocol this platform cannot drive") from None
        return _Remote(target, creds, adapter, service)

    def _slot(self, service_id: uuid.UUID) -> asyncio.Semaphore:
        if service_id not in self._slots:
            self._slots[service_id] = asyncio.Semaphore(self.settings.max_concurrent_per_service)
        return self._slots[service_id]

    def _breaker_open(self, service_id: uuid.UUID) -> _Breaker | None:
        breaker = self._breakers.get(service_id)
        return breaker if breaker and breaker.open_until > time.monotonic() else None

    def _record_failure(self, service_id: uuid.UUID, note: str) -> None:
        breaker = self._breakers.setdefault(service_id, _Breaker())
        breaker.failures += 1
        if breaker.failures >= self.settings.breaker_failures:
            breaker.open_until = time.monotonic() + self.settings.breaker_pause_seconds
            breaker.note = note
            logger.warning("circuit opened", extra={"service_id": str(service_id)})

    def _record_success(self, service_id: uuid.UUID) -> None:
        self._breakers.pop(service_id, None)

    async def _registry_health(self, job: Job) -> dict[str, Any] | None:
        cached = self._health.get(job.service_id)
        if cached and cached[0] > time.monotonic():
            return cached[1]
        try:
            report = await self.upstreams.registry.health(job.service_id)
        except UpstreamError:
            report = None  # the registry's own trouble is not the service's
        self._health[job.service_id] = (time.monotonic() + _HEALTH_TTL, report)
        return report

    async def _guard(self, job: Job) -> None:
        """Raise _Stop while the service's breaker is open or the registry says it is down."""
        breaker = self._breaker_open(job.service_id)
        if breaker is not None:
            raise _Stop(breaker.note, self.settings.breaker_pause_seconds)
        report = await self._registry_health(job)
        if report and report.get("status") in _UNHEALTHY:
            error = f": {report.get('error')}" if report.get("error") else ""
            raise _Stop(
                f"{job.service_slug} is unhealthy according to the registry{error}; "
                "the job waits and is checked again",
                self.settings.breaker_pause_seconds,
            )

    def _unavailable(self, job: Job, exc: AdapterError) -> _Stop:
        note = (
            f"{job.service_slug} cannot be reached ({exc.message}); "
            "the job waits and is checked again"
        )
        self._record_failure(job.service_id, note)
        return _Stop(note, self._backoff(job))

    def _backoff(self, job: Job) -> float:
        base = self.settings.poll_initial_seconds
        return float(min(self.settings.poll_max_seconds, base * 2 ** min(job.poll_failures, 10)))

    # ------------------------------------------------------------------ submit

    def _spec(
        self, job: Job, service: dict[str, Any], links: dict[uuid.UUID, str] | None = None
    ) -> JobSpec:
        owner = job.owner_id
        links = links or {}
        inputs = []
        for item in job.inputs:
            file_id = uuid.UUID(item["file_id"])
            inputs.append(
                InputFile(
                    file_id=file_id,
                    filename=str(item["filename"]),
                    size=int(item.get("size") or 0),
                    sha256=item.get("sha256"),
                    open=self._opener(file_id, owner),
                    url=links.get(file_id),
                )
            )
        panel = next(
            (p for p in service.get("panels") or [] if str(p.get("id")) == str(job.panel_id)),
            None,
        )
        return JobSpec(
            job_id=job.id,
            name=job.name,
            panel=job.panel_remote_id,
            build=job.build,
            phasing=job.phasing.value,
            population=job.population,
            r2_filter=job.r2_filter,
            mode=job.mode.value,
            inputs=inputs,
            result_password=self._password(job),
            panel_location=(panel or {}).get("location"),
        )

    async def _links(self, job: Job, remote: _Remote) -> dict[uuid.UUID, str]:
        """Signed file-manager links to the inputs, for a node that fetches them by URL (a WES
        profile with ``input_delivery: url``, DNAstack); other protocols stream the bytes."""
        kind = remote.target.service_type
        profile = remote.target.workflow_profile or {}
        wants_urls = kind == "dnastack" or (
            kind == "ga4gh_wes" and profile.get("input_delivery", "url") == "url"
        )
        if not wants_urls:
            return {}
        seconds = int(self.settings.max_run_hours * 3600)
        base = self.settings.input_link_base_url
        links = {}
        for file_id in job.input_file_ids:
            token = await self.upstreams.files.link(file_id, job.owner_id, seconds)
            links[file_id] = f"{base}/download/{token}"
        return links

    def _opener(self, file_id: uuid.UUID, owner: uuid.UUID) -> Callable[[], ByteStream]:
        def open_input() -> ByteStream:
            return self.upstreams.files.content(file_id, owner)

        return open_input

    def _password(self, job: Job) -> str | None:
        if not job.result_password_encrypted:
            return None
        return self.box.open(job.result_password_encrypted, str(job.id))

    async def _submit(self, job_id: uuid.UUID) -> None:
        job = await self._snapshot(job_id)
        if job is None:
            return
        if job.status is S.CANCELLING and job.submit_attempts == 0:
            await self._cancel_unsent(job_id, "cancelled before it was sent")
            return
        try:
            remote = await self._remote(job)
            await self._guard(job)
            async with self._slot(job.service_id):
                submission = await self._send(job, remote)
        except _Stop as stop:
            await self._submit_later(job_id, stop)
            return
        except _Fail as fail:
            await self._fail(job_id, str(fail))
            return
        if submission is None:  # cancelling, and the remote never got it
            await self._cancel_unsent(job_id, "cancelled before the service accepted it")
            return
        self._record_success(job.service_id)
        await self._accepted(job_id, submission, job.service_slug)

    async def _send(self, job: Job, remote: _Remote) -> Submission | None:
        """Find a lost earlier submission, else submit (after recording the attempt)."""
        try:
            spec = self._spec(job, remote.service, await self._links(job, remote))
            if job.submit_attempts > 0:
                found = await remote.adapter.find(remote.target, remote.creds, spec)
                if found is not None:
                    logger.info("lost submission found", extra={"job_id": str(job.id)})
                    return found
            if job.status is S.CANCELLING:
                return None
            if job.submit_attempts >= self.settings.submit_max_attempts:
                raise _Fail(
                    f"{job.service_slug} could not be reached after {job.submit_attempts} "
                    "attempts to submit; retry the job later"
                )
            await self._count_attempt(job.id)
            return await remote.adapter.submit(remote.target, remote.creds, spec)
        except RemoteUnavailable as exc:
            raise self._unavailable(job, exc) from exc
        except UpstreamError as exc:
            raise _Stop(f"an input file cannot be read right now ({exc.detail})", 30) from exc
        except AuthFailed as exc:
            self._forget_credentials(job)
            raise _Fail(
                f"{job.service_slug} refused your credentials ({exc.message}): update them, "
                "then retry the job"
            ) from exc
        except (RemoteRejected, NotSubmittable) as exc:
            raise _Fail(f"{job.service_slug} refused the job: {exc.message}") from exc
        except AdapterError as exc:
            raise _Fail(f"{job.service_slug}: {exc.message}") from exc

    async def _count_attempt(self, job_id: uuid.UUID) -> None:
        """Committed before the remote call: a crash after it means "look it up first"."""
        async with session_scope(self.sessionmaker) as session:
            job = await self._load(session, job_id)
            if job is None:
                raise _Stop("the job was taken over by another worker", 0)
            job.submit_attempts += 1

    async def _submit_later(self, job_id: uuid.UUID, stop: _Stop) -> None:
        async def change(session: AsyncSession, job: Job) -> float:
            job.paused_note = stop.note
            return max(stop.delay, self.settings.submit_retry_seconds * min(job.submit_attempts, 8))

        await self._write(job_id, change)

    async def _cancel_unsent(self, job_id: uuid.UUID, message: str) -> None:
        async def change(session: AsyncSession, job: Job) -> None:
            await states.move(session, job, S.CANCELLED, message=message)

        await self._write(job_id, change)

    async def _accepted(self, job_id: uuid.UUID, submission: Submission, label: str) -> None:
        async def change(session: AsyncSession, job: Job) -> float:
            job.remote_id = submission.remote_id
            job.paused_note = None
            job.poll_interval_seconds = self.settings.poll_initial_seconds
            if job.status is S.SUBMITTING:
                await states.move(
                    session, job, S.QUEUED, message=f"accepted by {label} as {submission.remote_id}"
                )
                return self.settings.poll_initial_seconds
            return 0  # cancelling: the poller sends the cancel now

        await self._write(job_id, change)

    # ------------------------------------------------------------------ poll and cancel

    async def _poll(self, job_id: uuid.UUID) -> None:
        job = await self._snapshot(job_id)
        if job is None or job.remote_id is None:
            return
        try:
            remote = await self._remote(job)
            await self._guard(job)
            async with self._slot(job.service_id):
                # Checked again: while this poll waited for a slot, the service's breaker may
                # have opened (polls queued behind a hanging service then stop at once).
                await self._guard(job)
                cancel_note = await self._send_cancel(job, remote)
                status = await self._status(job, remote)
        except _Stop as stop:
            await self._poll_later(job_id, stop)
            return
        except _Fail as fail:
            await self._fail(job_id, str(fail))
            return
        self._record_success(job.service_id)
        await self._apply(job_id, status, cancel_note)

    async def _send_cancel(self, job: Job, remote: _Remote) -> str | None:
        if job.status is not S.CANCELLING or job.cancel_sent or job.remote_id is None:
            return None
        try:
            result = await remote.adapter.cancel(remote.target, remote.creds, job.remote_id)
        except RemoteUnavailable as exc:
            raise self._unavailable(job, exc) from exc
        except RemoteNotFound:
            return None  # gone already: the status call below settles it
        except AdapterError as exc:
            result_note = f"{job.service_slug} did not accept the cancel ({exc.message})"
            await self._mark_cancel_sent(job.id)
            return result_note
        await self._mark_cancel_sent(job.id)
        if result.ok:
            return None
        return (
            f"{job.service_slug} does not stop jobs on request ({result.message}); "
            "the job is followed until it ends"
        )

    async def _mark_cancel_sent(self, job_id: uuid.UUID) -> None:
        async with session_scope(self.sessionmaker) as session:
            job = await self._load(session, job_id)
            if job is not None:
                job.cancel_sent = True

    async def _status(self, job: Job, remote: _Remote) -> RemoteStatus:
        assert job.remote_id is not None
        try:
            return await remote.adapter.status(remote.target, remote.creds, job.remote_id)
        except RemoteUnavailable as exc:
            raise self._unavailable(job, exc) from exc
        except RemoteNotFound as exc:
            raise _Fail(
                f"the job no longer exists on {job.service_slug} (it was deleted there or "
                f"expired): {exc.message}"
            ) from exc
        except AuthFailed as exc:
            self._forget_credentials(job)
            raise _Stop(
                f"{job.service_slug} refused your credentials ({exc.message}): update them; "
                "the job waits and is checked again",
                self.settings.breaker_pause_seconds,
            ) from exc
        except AdapterError as exc:
            raise _Fail(f"{job.service_slug}: {exc.message}") from exc

    async def _poll_later(self, job_id: uuid.UUID, stop: _Stop) -> None:
        async def change(session: AsyncSession, job: Job) -> float | None:
            if self._overdue(job):
                # Paused past the maximum run time (a service down for days): stop waiting.
                await self._too_long(session, job, job.remote_state or "", also=stop.note)
                return None
            job.paused_note = stop.note
            job.poll_failures += 1
            return stop.delay

        await self._write(job_id, change)

    async def _apply(self, job_id: uuid.UUID, status: RemoteStatus, note: str | None) -> None:
        label_state = status.remote_state

        async def change(session: AsyncSession, job: Job) -> float | None:
            changed = (
                job.remote_state != status.remote_state
                or job.progress != status.progress
                or job.queue_position != status.queue_position
                or (status.steps and job.remote_messages != status.steps)
            )
            job.remote_state = status.remote_state
            job.progress = status.progress if status.progress is not None else job.progress
            job.queue_position = status.queue_position
            if status.steps:
                job.remote_messages = list(status.steps)[-200:]
            job.poll_failures = 0
            job.paused_note = note if job.status is S.CANCELLING else None
            if job.status is S.CANCELLING and note is None and job.cancel_sent:
                job.paused_note = None
            return await self._transition(session, job, status, label_state, bool(changed))

        await self._write(job_id, change)

    async def _transition(
        self, session: AsyncSession, job: Job, status: RemoteStatus, raw: str, changed: bool
    ) -> float | None:
        label = job.service_slug
        if status.state == "completed":
            if job.status is S.CANCELLING:
                await states.move(
                    session,
                    job,
                    S.CANCELLED,
                    message=f"{label} finished the job before the cancel took effect; "
                    "its results were not collected",
                    remote_state=raw,
                )
                return None
            job.results_ready = True
            return 0
        if status.state == "failed":
            message = status.message or f"{label} reported the job failed (state {raw})"
            target = S.CANCELLED if job.status is S.CANCELLING else S.FAILED
            await states.move(session, job, target, message=message, remote_state=raw)
            return None
        if status.state == "cancelled":
            who = "on request" if job.status is S.CANCELLING else f"on {label}"
            await states.move(
                session, job, S.CANCELLED, message=f"cancelled {who}", remote_state=raw
            )
            return None
        if status.state == "running" and job.status is S.QUEUED:
            await states.move(session, job, S.RUNNING, message=status.message, remote_state=raw)
            changed = True
        elif status.state == "queued" and job.status is S.RUNNING:
            await states.move(session, job, S.QUEUED, message=status.message, remote_state=raw)
            changed = True
        elif status.state == "paused":
            job.paused_note = status.message or f"{label} has paused the job ({raw})"
        if self._overdue(job):
            await self._too_long(session, job, raw)
            return None
        return self._next_interval(job, changed)

    def _overdue(self, job: Job) -> bool:
        since = job.submitted_at or job.created_at
        limit = timedelta(hours=self.settings.max_run_hours)
        return job.status in (S.QUEUED, S.RUNNING) and utcnow() - since > limit

    async def _too_long(
        self, session: AsyncSession, job: Job, raw: str, also: str | None = None
    ) -> None:
        hours = self.settings.max_run_hours
        message = (
            f"the job did not finish on {job.service_slug} within the maximum run time "
            f"of {hours:g} hours"
        )
        await states.move(
            session,
            job,
            S.FAILED,
            message=f"{message} (last: {also})" if also else message,
            remote_state=raw or None,
        )

    def _next_interval(self, job: Job, changed: bool) -> float:
        settings = self.settings
        if changed or job.poll_interval_seconds is None:
            interval = settings.poll_initial_seconds
        else:
            interval = min(
                settings.poll_max_seconds, job.poll_interval_seconds * settings.poll_backoff_factor
            )
        job.poll_interval_seconds = interval
        return interval

    # ------------------------------------------------------------------ results

    async def _collect(self, job_id: uuid.UUID) -> None:
        job = await self._snapshot(job_id)
        if job is None or job.remote_id is None:
            return
        try:
            remote = await self._remote(job)
            async with self._slot(job.service_id):
                results = await self._results(job, remote)
                for result in results:
                    if result.name in job.collected or not result.downloadable:
                        continue
                    file_id = await self._store(job, remote, result)
                    await self._record_result(job_id, result.name, file_id)
        except _Stop as stop:
            await self._poll_later(job_id, stop)
            return
        except _Fail as fail:
            await self._fail(job_id, str(fail))
            return
        notes = [
            f"{r.name}: {r.note or 'cannot be downloaded'}" for r in results if not r.downloadable
        ]
        await self._completed(job_id, notes)

    async def _results(self, job: Job, remote: _Remote) -> list[RemoteResult]:
        assert job.remote_id is not None
        try:
            return await remote.adapter.results(remote.target, remote.creds, job.remote_id)
        except RemoteUnavailable as exc:
            raise self._unavailable(job, exc) from exc
        except RemoteNotFound as exc:
            raise _Fail(f"the results are no longer on {job.service_slug}: {exc.message}") from exc
        except AdapterError as exc:
            raise _Fail(f"{job.service_slug}: {exc.message}") from exc

    async def _store(self, job: Job, remote: _Remote, result: RemoteResult) -> uuid.UUID:
        """Stream one result from the remote into file-manager (never whole in memory)."""
        password = self._password(job)
        try:
            if password is not None and remote.target.service_type == "michigan":
                download = cast(Any, remote.adapter).download(
                    remote.target, remote.creds, result, password=password
                )
            else:
                download = remote.adapter.download(remote.target, remote.creds, result)
            async with download as chunks:
                stored = await self.upstreams.files.store_result(
                    job.owner_id, job.id, _filename(result.name), chunks
                )
        except RemoteUnavailable as exc:
            raise self._unavailable(job, exc) from exc
        except UpstreamError as exc:
            raise _Stop(
                f"file-manager cannot store the results right now ({exc.detail})", 30
            ) from exc
        except ResultUnreadable as exc:
            raise _Fail(f"a result of {job.service_slug} cannot be opened: {exc.message}") from exc
        except RemoteNotFound as exc:
            raise _Fail(f"a result is no longer on {job.service_slug}: {exc.message}") from exc
        except AdapterError as exc:
            raise _Fail(f"{job.service_slug}: {exc.message}") from exc
        return uuid.UUID(str(stored["id"]))

    async def _record_result(self, job_id: uuid.UUID, name: str, file_id: uuid.UUID) -> None:
        """Each stored file is recorded at once, so a resumed collection does not store it twice."""
        async with session_scope(self.sessionmaker) as session:
            job = await self._load(session, job_id)
            if job is None:
                raise _Stop("the job was taken over by another worker", 0)
            job.collected = {**job.collected, name: str(file_id)}
            job.result_file_ids = [*job.result_file_ids, file_id]
            job.lease_expires_at = utcnow() + timedelta(seconds=self.settings.lease_seconds)

    async def _completed(self, job_id: uuid.UUID, notes: list[str]) -> None:
        async def change(session: AsyncSession, job: Job) -> None:
            job.result_notes = notes
            count = len(job.result_file_ids)
            message = f"{count} result file{'s' if count != 1 else ''} stored"
            if notes:
                message += f"; {len(notes)} could not be fetched (see the job's messages)"
            await states.move(
                session, job, S.COMPLETED, message=message, remote_state=job.remote_state
            )

        await self._write(job_id, change)


def _filename(name: str) -> str:
    """A result's file name for file-manager: its last path part, bounded."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1].strip() or "result"
    return base[:200]
