"""The health worker: every ``HEALTH_CHECK_INTERVAL_SECONDS`` (± jitter) it sweeps every active
service concurrently (a background task registered in ``main.py``).

- ``asyncio.gather`` under a semaphore (``HEALTH_CHECK_CONCURRENCY``) and a hard per-check
  timeout inside each probe: one hanging service costs its own timeout, never the sweep's.
- Probes hold no database connection; results are recorded afterwards in one transaction.
- Only one replica sweeps at a time: the sweep runs under a Postgres advisory lock, so running
  several registry replicas never multiplies the traffic sent to external services.
- Each sweep also prunes health history older than the retention period.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from fedimpute_shared.db import advisory_lock, session_scope, utcnow
from service_registry.config import Settings
from service_registry.health import service as health
from service_registry.health.http import ProbeClient
from service_registry.health.probes import ProbeResult, ProbeTarget, probe
from service_registry.health.recording import Recorded, record_results
from service_registry.metrics import RegistryMetrics
from service_registry.services import repository as services

logger = logging.getLogger(__name__)

# A fixed 64-bit key for pg_try_advisory_lock: "only one health sweep at a time, fleet-wide".
SWEEP_LOCK_KEY = 0x5EED_0F_4EA1_7400
# Results are written in batches of this size, or at least this often, while probes run.
RECORD_BATCH = 250
RECORD_INTERVAL_SECONDS = 0.5


@dataclass(frozen=True)
class SweepReport:
    services: int
    duration_seconds: float
    probe_seconds: float
    record_seconds: float
    by_status: dict[str, int]


class HealthWorker:
    def __init__(
        self,
        engine: AsyncEngine,
        sessionmaker: async_sessionmaker[AsyncSession],
        client: ProbeClient,
        settings: Settings,
        metrics: RegistryMetrics,
    ) -> None:
        self._engine = engine
        self._sessionmaker = sessionmaker
        self._client = client
        self._settings = settings
        self._metrics = metrics
        self._running = asyncio.Lock()

    @property
    def sweeping(self) -> bool:
        return self._running.locked()

    async def sweep_once(self) -> SweepReport | None:
        """One sweep of every active service; None when another sweep holds the lock.

        Results are recorded in batches *while* the remaining probes are still waiting on the
        network, so when the last probe answers only the last batch is left to write.
        """
        async with self._running, advisory_lock(self._engine, SWEEP_LOCK_KEY) as acquired:
            if not acquired:
                self._metrics.skipped.inc()
                return None
            started = time.perf_counter()
            targets = await self._load_targets()
            queue: asyncio.Queue[tuple[uuid.UUID, Recorded]] = asyncio.Queue()
            probing_done = asyncio.Event()
            recorder = asyncio.create_task(self._record_batches(queue, probing_done))
            try:
                results = await self.probe_all(targets, on_result=queue.put_nowait)
            finally:
                probing_done.set()
                probed = time.perf_counter()
                await recorder
            async with session_scope(self._sessionmaker) as session:
                pruned = await health.prune_history(session, self._settings)
            finished = time.perf_counter()
        by_status: dict[str, int] = {}
        for result in results:
            by_status[result.status.value] = by_status.get(result.status.value, 0) + 1
            self._metrics.checks.labels(result.status.value).inc()
        report = SweepReport(
            len(results), finished - started, probed - started, finished - probed, by_status
        )
        self._metrics.sweeps.observe(report.duration_seconds)
        logger.info(
            "health sweep of %d services in %.2f s (probes %.2f s, then %.2f s to finish recording;"
            " %d old checks pruned): %s",
            report.services,
            report.duration_seconds,
            report.probe_seconds,
            report.record_seconds,
            pruned,
            by_status,
        )
        return report

    async def probe_all(
        self,
        targets: dict[uuid.UUID, ProbeTarget],
        on_result: Callable[[tuple[uuid.UUID, Recorded]], None] | None = None,
    ) -> list[ProbeResult]:
        """Probe every target concurrently, at most ``concurrency`` at a time."""
        semaphore = asyncio.Semaphore(self._settings.health_check_concurrency)
        limits = health.probe_limits(self._settings)

        async def bounded(service_id: uuid.UUID, target: ProbeTarget) -> ProbeResult:
            async with semaphore:
                result = await probe(self._client, target, limits)
            if on_result is not None:
                on_result((service_id, Recorded(result, utcnow())))
            return result

        return list(await asyncio.gather(*(bounded(i, t) for i, t in targets.items())))

    async def _load_targets(self) -> dict[uuid.UUID, ProbeTarget]:
        async with self._sessionmaker() as session:
            active = await services.active_services(session)
            return {s.id: health.target_of(s) for s in active}

    async def _record_batches(
        self, queue: asyncio.Queue[tuple[uuid.UUID, Recorded]], probing_done: asyncio.Event
    ) -> None:
        """Write results as they come: every ``RECORD_INTERVAL_SECONDS`` (or at once when the
        probing is over), whatever has arrived, in transactions of at most ``RECORD_BATCH``.

        Draining with ``get_nowait`` costs nothing per result (``wait_for`` on each result would
        create a task each), which matters with a thousand probes in flight.
        """
        while True:
            finished = probing_done.is_set()
            if not finished:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(probing_done.wait(), RECORD_INTERVAL_SECONDS)
            while not queue.empty():
                batch = dict(queue.get_nowait() for _ in range(min(RECORD_BATCH, queue.qsize())))
                async with session_scope(self._sessionmaker) as session:
                    await record_results(session, batch, self._settings)
            if finished:
                return
