"""Validating a stored file: take its lease, run the validator in a bounded child process, store
the tabix index, record the report and the ``file.validated`` event in one transaction."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import resource
import signal
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from fedimpute_shared.db import session_scope, utcnow
from fedimpute_shared.events import FileValidated, add_to_outbox
from file_manager.config import Settings
from file_manager.files import repository
from file_manager.metrics import FileMetrics
from file_manager.models import FileStatus, OutboxEvent, StoredFile
from file_manager.storage import LocalStorage, Storage
from file_manager.vcf import messages as msg

logger = logging.getLogger(__name__)
PRODUCER = "file-manager"


def _invalid(message: str) -> dict[str, Any]:
    return {
        "status": "invalid",
        "errors": [{"message": message, "line": None, "record": None}],
        "errors_not_shown": 0,
        "warnings": [],
        "statistics": None,
        "build": None,
        "index_built": False,
    }


def validation_event(file: StoredFile, report: dict[str, Any] | None) -> FileValidated:
    return FileValidated(
        producer=PRODUCER,
        file_id=file.id,
        owner_id=file.owner_id,
        filename=file.filename,
        status=file.status.value,
        error_count=len(report["errors"]) + report.get("errors_not_shown", 0) if report else 0,
        warning_count=len(report["warnings"]) if report else 0,
    )


@dataclass
class Validator:
    sessionmaker: async_sessionmaker[AsyncSession]
    storage: Storage
    settings: Settings
    metrics: FileMetrics | None = None

    async def validate(self, file_id: uuid.UUID) -> None:
        """Validate one file if nobody else is; safe to call twice or from two replicas."""
        claimed = await self._claim(file_id)
        if claimed is None:
            return
        storage_key, declared_build = claimed
        if isinstance(self.storage, LocalStorage):
            # a completed tus upload whose rename a crash interrupted: finish it first
            await asyncio.to_thread(self.storage.finish_interrupted_rename, storage_key)
        index_key: str | None = None
        with tempfile.TemporaryDirectory(prefix="fm-validate-") as tmp:
            index_tmp = Path(tmp) / "index.tbi"
            with self.storage.local_copy(storage_key) as path:
                report = await self.run_child(path, index_tmp, declared_build)
            if report["status"] == "valid" and index_tmp.exists():
                index_key = storage_key + ".tbi"
                await self.storage.put(index_key, _file_chunks(index_tmp))
        drop_bytes, drop_index = await self._record(file_id, report, index_key)
        if drop_bytes:
            await self.storage.delete(storage_key)
        if drop_index and index_key:
            await self.storage.delete(index_key)

    async def _claim(self, file_id: uuid.UUID) -> tuple[str, str | None] | None:
        now = utcnow()
        lease = now + timedelta(seconds=self.settings.validation_timeout_seconds + 120)
        async with session_scope(self.sessionmaker) as session:
            if not await repository.claim_validation(session, file_id, now, lease):
                return None
            file = await session.get(StoredFile, file_id)
            assert file is not None
            return file.storage_key, file.declared_build

    async def _record(
        self, file_id: uuid.UUID, report: dict[str, Any], index_key: str | None
    ) -> tuple[bool, bool]:
        """Store the outcome; say whether the file's bytes and the new index must go."""
        async with session_scope(self.sessionmaker) as session:
            file = await repository.get_for_update(session, file_id)
            if file is None or file.deleted_at is not None or file.status != FileStatus.VALIDATING:
                return False, True  # deleted meanwhile: its bytes went with it
            valid = report["status"] == "valid"
            file.status = FileStatus.VALID if valid else FileStatus.INVALID
            file.validation_report = report
            file.validated_at = utcnow()
            file.validation_lease_until = None
            file.index_storage_key = index_key
            drop = not valid and not self.settings.keep_invalid_files
            if drop:
                file.content_deleted_at = utcnow()
                file.deletion_reason = "invalid"
            await add_to_outbox(session, OutboxEvent, validation_event(file, report))
        if self.metrics is not None:
            self.metrics.validations.labels(report["status"]).inc()
        logger.info(
            "validated %s: %s",
            file_id,
            report["status"],
            extra={"file_id": str(file_id), "errors": len(report["errors"])},
        )
        return drop, drop

    async def run_child(self, path: Path, index_path: Path, build: str | None) -> dict[str, Any]:
        """Run the validator in a child process bounded in memory, CPU and wall time."""
        s = self.settings
        job = {
            "path": str(path),
            "index_path": str(index_path),
            "declared_build": build,
            "limits": {
                "max_decompressed_bytes": s.validation_max_decompressed_bytes,
                "max_compression_ratio": s.validation_max_compression_ratio,
                "max_header_bytes": s.validation_max_header_bytes,
                "max_line_bytes": s.validation_max_line_bytes,
                "min_samples_warning": s.validation_min_samples_warning,
            },
        }
        memory = s.validation_memory_limit_mb * 1024 * 1024
        cpu = int(s.validation_timeout_seconds) + 5

        def bound() -> None:  # runs in the child before exec
            resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
            resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu))

        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "file_manager.vcf.runner",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            preexec_fn=bound,
            start_new_session=True,  # its own process group: see kill_group
        )
        try:
            out, err = await asyncio.wait_for(
                proc.communicate(json.dumps(job).encode()), s.validation_timeout_seconds
            )
        except TimeoutError:
            await kill_group(proc)
            return _invalid(msg.TIMED_OUT.format(seconds=s.validation_timeout_seconds))
        finally:
            if proc.returncode is None:
                await kill_group(proc)
        if proc.returncode != 0:
            text = err.decode("utf-8", "replace")
            logger.warning("validator exited with %s: %s", proc.returncode, text[-2000:])
            if "MemoryError" in text or proc.returncode in (-9, 137):
                return _invalid(msg.OUT_OF_MEMORY)
            return _invalid(msg.malformed("the validator could not read this file"))
        result: dict[str, Any] = json.loads(out)
        return result


async def kill_group(proc: asyncio.subprocess.Process) -> None:
    """Kill a validator and everything it started (the runner forks the tabix indexer, which
    killing the runner alone would leave running, orphaned, until it finished the file)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    await proc.wait()


async def _file_chunks(path: Path) -> AsyncIterator[bytes]:
    data = await asyncio.to_thread(path.read_bytes)  # a tabix index: kilobytes
    yield data


async def requeue_backlog(
    sessionmaker: async_sessionmaker[AsyncSession], submit: Any, limit: int = 100
) -> int:
    """Queue files waiting for validation with a free lease (after a crash or a restart)."""
    async with session_scope(sessionmaker) as session:
        backlog = await repository.validation_backlog(session, utcnow(), limit)
    for file_id in backlog:
        submit(file_id)
    return len(backlog)
