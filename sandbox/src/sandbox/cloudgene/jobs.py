"""Cloudgene jobs and the engine that moves them through the numeric states.

A job waits (1, with a queue position) for at least `queue_seconds` and for a free slot
(`max_parallel_jobs`), runs (2) through the steps "Input Validation", "Quality Control",
"Phasing and Imputation" and "Summary", exports (3) and succeeds (4). A validation or QC problem
stops it at 5 with a `type: 1` message holding the server's exact text. Cancel gives 6, the
retention timers give 8/9 then 7 (results deleted), delete gives 10, and a "dead" fault gives -1,
the only state restart accepts.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from dataclasses import dataclass, field

from sandbox.cloudgene.options import CloudgeneOptions
from sandbox.faults import FaultState
from sandbox.users import User
from sandbox.vcf.validation import ValidationError
from sandbox.workflow import (
    InjectedFailure,
    WorkflowSpec,
    fault_gate,
    impute_all,
    qc_all,
    reports,
    validate_all,
)

__all__ = ["DEAD", "Job", "JobEngine", "OutputFile", "Step"]

DEAD, WAITING, RUNNING, EXPORTING, SUCCESS, FAILED, CANCELED = -1, 1, 2, 3, 4, 5, 6
RETIRED, SUCCESS_NOTIFIED, FAILED_NOTIFIED, DELETED = 7, 8, 9, 10
ACTIVE = (WAITING, RUNNING, EXPORTING)

# Step message types (Cloudgene `Message`): 0 OK, 1 ERROR, 2 WARNING, 3 RUNNING, 4 ERROR_ANSI.
OK, ERROR, RUNNING_MESSAGE = 0, 1, 3


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class LogMessage:
    text: str
    type: int
    time: int = field(default_factory=now_ms)


@dataclass
class Step:
    id: int
    name: str
    messages: list[LogMessage] = field(default_factory=list)


@dataclass
class OutputFile:
    """A downloadable result; `count` is the number of downloads left (-1: unlimited)."""

    name: str
    data: bytes | None
    hash: str
    count: int


@dataclass
class Job:
    id: str
    name: str
    user: User
    app_id: str
    app_label: str
    user_agent: str
    spec: WorkflowSpec | None
    setup_error: str | None = None
    generated_password: bool = False
    state: int = WAITING
    submitted_on: int = field(default_factory=now_ms)
    start_time: int = 0
    end_time: int = 0
    deleted_on: int = -1
    steps: list[Step] = field(default_factory=list)
    outputs: list[OutputFile] = field(default_factory=list)
    param_hash: str = field(default_factory=lambda: secrets.token_hex(32))
    counters: dict[str, int] = field(default_factory=dict)
    task: asyncio.Task[None] | None = None

    def find_output(self, file_hash: str) -> OutputFile | None:
        return next((f for f in self.outputs if f.hash == file_hash), None)


class JobEngine:
    """Owns every job of one Cloudgene simulator and runs each as an asyncio task."""

    def __init__(self, options: CloudgeneOptions, faults: FaultState) -> None:
        self.options = options
        self.timings = options.timings
        self.faults = faults
        self.jobs: dict[str, Job] = {}
        self._slots: asyncio.Semaphore | None = None
        self._last_id = ""

    def new_id(self) -> str:
        """`job-YYYYMMDD-HHMMSS-mmm`, made unique when two submits share a millisecond."""
        stamp = now_ms()
        while True:
            candidate = (
                "job-"
                + time.strftime("%Y%m%d-%H%M%S", time.localtime(stamp / 1000))
                + f"-{stamp % 1000:03d}"
            )
            if candidate != self._last_id and candidate not in self.jobs:
                self._last_id = candidate
                return candidate
            stamp += 1

    def active_jobs(self, user: User) -> int:
        return sum(
            1 for j in self.jobs.values() if j.user.username == user.username and j.state in ACTIVE
        )

    def position_in_queue(self, job: Job) -> int:
        """1-based rank among waiting jobs (all users, by submission); 0 once running."""
        if job.state != WAITING:
            return 0
        waiting = [j for j in self.jobs.values() if j.state == WAITING]
        return waiting.index(job) + 1

    def find_by_file_hash(self, file_hash: str) -> tuple[Job, OutputFile] | None:
        for job in self.jobs.values():
            found = job.find_output(file_hash)
            if found:
                return job, found
        return None

    def find_by_param_hash(self, param_hash: str) -> Job | None:
        return next(
            (j for j in self.jobs.values() if j.param_hash == param_hash and j.outputs), None
        )

    def submit(self, job: Job) -> None:
        self.jobs[job.id] = job
        self._start(job)

    def _start(self, job: Job) -> None:
        job.task = asyncio.create_task(self._run(job), name=job.id)

    def cancel(self, job: Job) -> None:
        """`GET .../cancel`: only waiting, running or exporting jobs change (to 6)."""
        if job.state in ACTIVE:
            self._stop_task(job)
            job.state = CANCELED
            job.end_time = now_ms()

    def delete(self, job: Job) -> None:
        self._stop_task(job)
        job.state = DELETED
        for output in job.outputs:
            output.data = None

    def restart(self, job: Job) -> None:
        job.state = WAITING
        job.steps = []
        job.start_time = job.end_time = 0
        self._start(job)

    def _stop_task(self, job: Job) -> None:
        if job.task and not job.task.done() and job.task is not asyncio.current_task():
            job.task.cancel()

    async def shutdown(self) -> None:
        tasks = [j.task for j in self.jobs.values() if j.task and not j.task.done()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _run(self, job: Job) -> None:
        await asyncio.sleep(self.timings.queue_seconds)
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.options.max_parallel_jobs)
        async with self._slots:
            job.state = RUNNING
            job.start_time = now_ms()
            try:
                await self._pipeline(job)
            except (ValidationError, InjectedFailure) as problem:
                self._fail(job, problem)
                await self._retention(job)
                return
            job.state = EXPORTING
            await asyncio.sleep(self.timings.export_seconds)
            try:
                await fault_gate(self.faults, "export")
            except InjectedFailure as problem:
                self._fail(job, problem)
                return
        job.state = SUCCESS
        job.end_time = now_ms()
        await self._retention(job)

    def _fail(self, job: Job, problem: ValidationError | InjectedFailure) -> None:
        text = problem.message if isinstance(problem, ValidationError) else str(problem)
        if job.steps:
            job.steps[-1].messages = [
                m for m in job.steps[-1].messages if m.type != RUNNING_MESSAGE
            ]
            job.steps[-1].messages.append(LogMessage(text, ERROR))
        dead = isinstance(problem, InjectedFailure) and problem.mode == "dead"
        job.state = DEAD if dead else FAILED
        job.end_time = now_ms()

    async def _step(self, job: Job, name: str) -> Step:
        step = Step(
            id=len(job.steps) + 1, name=name, messages=[LogMessage(f"{name}...", RUNNING_MESSAGE)]
        )
        job.steps.append(step)
        await asyncio.sleep(self.timings.step_seconds)
        return step

    @staticmethod
    def _finish(step: Step, text: str) -> None:
        step.messages = [LogMessage(text, OK)]

    async def _pipeline(self, job: Job) -> None:
        """The steps of IS2; each one waits `step_seconds` and then consults the fault knobs."""
        step = await self._step(job, "Input Validation")
        await fault_gate(self.faults, "validation")
        if job.setup_error or job.spec is None:
            raise ValidationError(job.setup_error or "Job setup failed.")
        spec = job.spec
        validated = await validate_all(spec)
        self._finish(step, validated.summary)
        samples = len(validated.files[0].samples)
        job.counters = {
            "samples": samples,
            "variants": sum(len(f.variants) for f in validated.files),
            "chromosomes": samples * len(validated.files),
            "runs": 1,
        }
        step = await self._step(job, "Quality Control")
        await fault_gate(self.faults, "qc")
        qc = await qc_all(spec, validated)
        self._finish(step, qc.summary)
        files = reports(validated, qc)
        if spec.impute:
            step = await self._step(job, "Phasing and Imputation")
            await fault_gate(self.faults, "imputation")
            imputed = await impute_all(spec, validated, qc)
            self._finish(step, f"Imputation finished: {len(imputed)} chromosome(s) imputed.")
            files = imputed | files
        step = await self._step(job, "Summary")
        summary = "Data compression and encryption finished."
        if job.generated_password:
            summary += (
                f"\n\nWe encrypted the results with the following password: <b>{spec.password}</b>"
            )
        self._finish(step, summary)
        job.outputs = [
            OutputFile(n, d, secrets.token_hex(32), self.options.max_downloads)
            for n, d in files.items()
        ]

    async def _retention(self, job: Job) -> None:
        """Notification (8/9) then retirement (7, results deleted), as Cloudgene's cron does."""
        notify, retire = self.timings.notify_after_seconds, self.timings.retire_after_seconds
        if notify is not None:
            await asyncio.sleep(notify)
            if job.state in (SUCCESS, FAILED):
                job.state = SUCCESS_NOTIFIED if job.state == SUCCESS else FAILED_NOTIFIED
                if retire is not None:
                    job.deleted_on = now_ms() + int(max(0.0, retire - notify) * 1000)
        if retire is not None:
            await asyncio.sleep(max(0.0, retire - (notify or 0.0)))
            if job.state in (SUCCESS, FAILED, SUCCESS_NOTIFIED, FAILED_NOTIFIED):
                job.state = RETIRED
                for output in job.outputs:
                    output.data = None
