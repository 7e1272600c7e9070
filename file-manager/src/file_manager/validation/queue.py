"""An in-process queue of files to validate, worked by ``validation_concurrency`` tasks.

The queue is only a fast path: the truth is the file's status and its validation lease in
Postgres, so a file whose replica died mid-validation is picked up again by the periodic
recovery sweep of any replica (see :func:`file_manager.validation.service.requeue_backlog`).

``POST /files?wait=true`` goes through the same queue (:meth:`ValidationQueue.validate`): the
request waits for a worker like every other file, so no request ever runs a validator child
process (each allowed ``VALIDATION_MEMORY_LIMIT_MB``) beside the ``validation_concurrency``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable

logger = logging.getLogger(__name__)


class ValidationQueue:
    def __init__(self, run: Callable[[uuid.UUID], Awaitable[None]], workers: int) -> None:
        self._run = run
        self._queue: asyncio.Queue[uuid.UUID] = asyncio.Queue()
        self._queued: set[uuid.UUID] = set()
        self._workers = workers
        self._tasks: list[asyncio.Task[None]] = []
        self._waiters: dict[uuid.UUID, list[asyncio.Future[None]]] = {}

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._work()) for _ in range(self._workers)]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for waiters in self._waiters.values():
            for waiter in waiters:
                waiter.cancel()
        self._waiters.clear()

    def submit(self, file_id: uuid.UUID) -> None:
        if file_id not in self._queued:
            self._queued.add(file_id)
            self._queue.put_nowait(file_id)

    async def validate(self, file_id: uuid.UUID) -> None:
        """Queue ``file_id`` and wait until a worker has run it (``?wait=true``)."""
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(file_id, []).append(waiter)
        self.submit(file_id)
        try:
            await waiter
        finally:
            waiters = self._waiters.get(file_id, [])
            if waiter in waiters:
                waiters.remove(waiter)
                if not waiters:
                    del self._waiters[file_id]

    async def join(self) -> None:
        """Wait until everything submitted so far is validated (tests, shutdown)."""
        await self._queue.join()

    async def _work(self) -> None:
        while True:
            file_id = await self._queue.get()
            try:
                await self._run(file_id)
            except Exception:
                logger.exception("validation of %s failed unexpectedly", file_id)
            finally:
                self._queued.discard(file_id)
                self._queue.task_done()
                for waiter in self._waiters.pop(file_id, []):
                    if not waiter.done():
                        waiter.set_result(None)
