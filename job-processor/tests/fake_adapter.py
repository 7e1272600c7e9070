"""An in-memory remote service implementing the Adapter protocol, with knobs for faults."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from job_processor.adapters.base import (
    AdapterError,
    CheckResult,
    Credentials,
    JobSpec,
    RemoteNotFound,
    RemoteResult,
    RemoteStatus,
    ServiceTarget,
    Submission,
)


@dataclass
class FakeRemote:
    service_type: str = "michigan"
    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    submits: int = 0
    calls: list[str] = field(default_factory=list)
    # knobs
    fail_next: list[AdapterError] = field(default_factory=list)  # raised by the next calls
    lose_answer: bool = False  # accept the submission, then raise (the answer "times out")
    cancel_ok: bool = True
    results_of: dict[str, list[tuple[str, bytes]]] = field(default_factory=dict)
    _ids: Any = field(default_factory=lambda: itertools.count(1))

    def _fault(self, call: str) -> None:
        self.calls.append(call)
        if self.fail_next:
            raise self.fail_next.pop(0)

    def set(self, remote_id: str, state: str, **extra: Any) -> None:
        self.jobs[remote_id].update(state=state, **extra)

    async def verify_credentials(self, target: ServiceTarget, creds: Credentials) -> CheckResult:
        return CheckResult(True, "ok")

    async def submit(self, target: ServiceTarget, creds: Credentials, spec: JobSpec) -> Submission:
        self._fault("submit")
        read = 0
        for item in spec.inputs:
            async with item.open() as chunks:
                async for chunk in chunks:
                    read += len(chunk)
        remote_id = f"job-{next(self._ids)}"
        self.submits += 1
        self.jobs[remote_id] = {"tag": spec.tag, "state": "queued", "read": read, "spec": spec}
        if self.lose_answer:
            self.lose_answer = False
            from job_processor.adapters.base import RemoteUnavailable

            raise RemoteUnavailable("submit: timed out")
        return Submission(remote_id)

    async def find(
        self, target: ServiceTarget, creds: Credentials, spec: JobSpec
    ) -> Submission | None:
        self._fault("find")
        for remote_id, job in self.jobs.items():
            if job["tag"] == spec.tag:
                return Submission(remote_id)
        return None

    async def status(
        self, target: ServiceTarget, creds: Credentials, remote_id: str
    ) -> RemoteStatus:
        self._fault("status")
        job = self.jobs.get(remote_id)
        if job is None:
            raise RemoteNotFound("job not found")
        return RemoteStatus(
            state=job["state"],
            remote_state=str(job["state"]).upper(),
            progress=job.get("progress"),
            queue_position=job.get("queue_position"),
            message=job.get("message"),
            steps=list(job.get("steps", [])),
        )

    async def cancel(
        self, target: ServiceTarget, creds: Credentials, remote_id: str
    ) -> CheckResult:
        self._fault("cancel")
        if self.cancel_ok:
            self.jobs[remote_id]["state"] = "cancelled"
            return CheckResult(True, "cancelled")
        return CheckResult(False, "cancel is not implemented by this node")

    async def results(
        self, target: ServiceTarget, creds: Credentials, remote_id: str
    ) -> list[RemoteResult]:
        self._fault("results")
        out = [
            RemoteResult(name, f"http://remote/{name}", len(data), True)
            for name, data in self.results_of.get(remote_id, [])
        ]
        out.append(RemoteResult("node-only.log", None, None, False, "stays on the node"))
        return out

    def download(self, target: ServiceTarget, creds: Credentials, result: RemoteResult, **kw: Any):
        data = dict(self.results_of[next(iter(self.results_of))]).get(result.name, b"")
        for items in self.results_of.values():
            for name, content in items:
                if name == result.name:
                    data = content

        @asynccontextmanager
        async def stream() -> AsyncIterator[AsyncIterator[bytes]]:
            self._fault("download")

            async def chunks() -> AsyncIterator[bytes]:
                for i in range(0, len(data), 65536):
                    yield data[i : i + 65536]

            yield chunks()

        return stream()
