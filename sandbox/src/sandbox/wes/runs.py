"""WES runs and the engine that executes the imputation workflow for them.

A run reads its input VCFs from `workflow_params` (keys `input_vcf`, `vcf`, `vcfs`, `input` or
`files`: one URL/name, a whitespace- or comma-separated string, or a list). Each entry is an
`http(s)://` URL (fetched), a `file://` path (read), or the name of a `workflow_attachment`.
Other keys: `refpanel` (default: the first panel), `population`, `build`, `phasing`, `mode`,
`r2Filter`, `password` (default: generated and printed in the run's stdout), `aesEncryption`.
States: [PREPROCESSING (workbench)] -> QUEUED -> INITIALIZING -> RUNNING -> COMPLETE, or
EXECUTOR_ERROR (validation/QC/fault), SYSTEM_ERROR (input unreachable, "dead" fault),
PREPROCESSING_ERROR (workbench input unreachable), CANCELING -> CANCELED; the `run_detour` knob
adds PAUSED, UNKNOWN or PREEMPTED. The Starter Kit: RUNNING -> COMPLETE, EXECUTOR_ERROR (also a
workflow URL not on GitHub, or an unreadable input) or UNKNOWN ("dead" fault).
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import httpx

from sandbox.cloudgene.options import Panel
from sandbox.faults import FaultState, FaultStep
from sandbox.results import generate_password
from sandbox.vcf.qc import QcSettings
from sandbox.vcf.validation import JobParams, ValidationError, ValidationLimits
from sandbox.wes.options import WesOptions
from sandbox.workflow import (
    InjectedFailure,
    WorkflowSpec,
    fault_gate,
    impute_all,
    parse_r2,
    qc_all,
    reports,
    validate_all,
)

__all__ = ["TERMINAL", "Run", "RunEngine", "Task", "iso"]

TERMINAL = frozenset(
    {
        "COMPLETE",
        "EXECUTOR_ERROR",
        "SYSTEM_ERROR",
        "CANCELED",
        "PREEMPTED",
        "PREPROCESSING_ERROR",
        "COMPLETE_WITH_ERRORS",
    }
)
INPUT_KEYS = ("input_vcf", "vcf", "vcfs", "input", "files")
GITHUB = "https://github.com/"
_TASKS: list[tuple[FaultStep, str, str]] = [
    (
        "validation",
        "input_validation",
        "imputationserver-utils validate --reference reference-panel.json *.vcf.gz",
    ),
    (
        "qc",
        "quality_control",
        "imputationserver-utils run-qc --reference reference-panel.json *.vcf.gz",
    ),
    (
        "imputation",
        "imputation",
        "minimac4 --refHaps panel.msav --haps phased.vcf.gz --format GT,DS,GP",
    ),
    ("export", "compression_encryption", "7z a -tzip -p*** chr_*.zip *.dose.vcf.gz *.info.gz"),
]


def iso(moment: datetime | None) -> str | None:
    """WES times: ISO 8601 `%Y-%m-%dT%H:%M:%SZ` in UTC."""
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ") if moment else None


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Task:
    id: str
    name: str
    cmd: list[str]
    start_time: datetime = field(default_factory=_now)
    end_time: datetime | None = None
    exit_code: int | None = None
    stdout: str = ""
    stderr: str = ""


@dataclass
class Run:
    id: str
    request: dict[str, Any]
    attachments: dict[str, bytes]
    state: str
    submitted_at: datetime = field(default_factory=_now)
    start_time: datetime | None = None
    end_time: datetime | None = None
    tasks: list[Task] = field(default_factory=list)
    outputs: dict[str, bytes] = field(default_factory=dict)
    stdout: list[str] = field(default_factory=list)
    stderr: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    log_fetched: bool = False
    task: asyncio.Task[None] | None = None


class InputError(Exception):
    """An input could not be read (the run ends in SYSTEM_ERROR / PREPROCESSING_ERROR)."""


class RunEngine:
    def __init__(self, options: WesOptions, faults: FaultState) -> None:
        self.options = options
        self.timings = options.timings
        self.faults = faults
        self.runs: dict[str, Run] = {}
        # Starter Kit outputs are files on the node (`file://` URLs); they are written here.
        self.workdir: Path | None = None

    def output_path(self, run: Run, name: str) -> Path:
        """Where a Starter Kit node keeps an output: wes_runs/<id[0:2]>/<id[2:4]>/<id[4:6]>/<id>/work."""
        assert self.workdir is not None
        rid = run.id.replace("-", "")
        return (
            self.workdir
            / "wes_runs"
            / rid[0:2]
            / rid[2:4]
            / rid[4:6]
            / run.id
            / "work"
            / rid[6:8]
            / name
        )

    def submit(self, request: dict[str, Any], attachments: dict[str, bytes]) -> Run:
        flavour = self.options.flavour
        # The Starter Kit reads its state from `nextflow log`: RUNNING from the start (spec §3.1).
        first = {"dnastack-workbench": "PREPROCESSING", "starter-kit": "RUNNING"}.get(
            flavour, "QUEUED"
        )
        run = Run(id=str(uuid.uuid4()), request=request, attachments=attachments, state=first)
        if flavour == "starter-kit":
            run.start_time = run.submitted_at
        self.runs[run.id] = run
        run.task = asyncio.create_task(self._execute(run), name=run.id)
        return run

    def cancel(self, run: Run) -> None:
        """CANCELING now, CANCELED after `canceling_seconds`; finished runs do not change."""
        if run.state in TERMINAL or run.state == "CANCELING":
            return
        if run.task and not run.task.done():
            run.task.cancel()
        run.state = "CANCELING"
        run.task = asyncio.create_task(self._finish_cancel(run))

    async def _finish_cancel(self, run: Run) -> None:
        await asyncio.sleep(self.timings.canceling_seconds)
        run.state = "CANCELED"
        run.end_time = _now()

    async def shutdown(self) -> None:
        tasks = [r.task for r in self.runs.values() if r.task and not r.task.done()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # ---- inputs ---------------------------------------------------------------------------
    @staticmethod
    def input_refs(params: dict[str, Any]) -> list[str]:
        for key in INPUT_KEYS:
            value = params.get(key)
            if isinstance(value, list):
                return [str(v) for v in value]
            if isinstance(value, str) and value.strip():
                return value.replace(",", " ").split()
        return []

    async def _fetch(self, run: Run) -> list[tuple[str, bytes]]:
        refs = self.input_refs(run.request.get("workflow_params") or {})
        if not refs:
            raise InputError(f"workflow_params has no input VCF (keys: {', '.join(INPUT_KEYS)})")
        uploads = []
        async with httpx.AsyncClient(timeout=30, follow_redirects=True) as client:
            for ref in refs:
                uploads.append(await self._read(client, run, ref))
        return uploads

    async def _read(self, client: httpx.AsyncClient, run: Run, ref: str) -> tuple[str, bytes]:
        parsed = urlparse(ref)
        name = unquote(parsed.path.rsplit("/", 1)[-1]) or ref
        if parsed.scheme in ("http", "https"):
            try:
                response = await client.get(ref)
                response.raise_for_status()
            except httpx.HTTPError as exc:
                raise InputError(f"Could not download {ref}: {exc}") from exc
            return name, response.content
        if parsed.scheme == "file":
            try:
                return name, await asyncio.to_thread(Path(unquote(parsed.path)).read_bytes)
            except OSError as exc:
                raise InputError(f"Could not read {ref}: {exc}") from exc
        if ref in run.attachments:
            return ref.rsplit("/", 1)[-1], run.attachments[ref]
        raise InputError(
            f"Unsupported input {ref}: not an http(s) or file URL nor a workflow_attachment"
        )

    def _spec(self, run: Run, uploads: list[tuple[str, bytes]]) -> WorkflowSpec:
        params = run.request.get("workflow_params") or {}
        panel = self._panel(str(params.get("refpanel", "")))
        password = str(params.get("password") or "")
        if not password:
            password = generate_password()
            run.stdout.append(f"We encrypted the results with the following password: {password}")
        mode = str(params.get("mode", "imputation"))
        job = JobParams(
            build=str(params.get("build", "hg19")),
            phasing=str(params.get("phasing", "eagle")),
            population=str(params.get("population", "") or "off"),
            mode=mode,
            r2_filter=str(params.get("r2Filter", "0")),
            panel_id=panel.key,
            panel_build=panel.build,
            panel_populations=tuple(p.id for p in panel.populations),
        )
        return WorkflowSpec(
            uploads=tuple(uploads),
            params=job,
            limits=ValidationLimits(
                min_samples=self.options.min_samples, max_samples=self.options.max_samples
            ),
            qc=QcSettings(min_snps=panel.min_snps),
            password=password,
            aes=str(params.get("aesEncryption", "")).lower() in ("true", "yes", "1"),
            impute=mode == "imputation",
            r2_filter=parse_r2(job.r2_filter),
        )

    def _panel(self, ref: str) -> Panel:
        panel_id = ref.removeprefix("apps@").partition("@")[0]
        for panel in self.options.panels:
            if panel.id == panel_id:
                return panel
        if panel_id:
            raise ValidationError(f"Application {panel_id} is not installed or wrong permissions.")
        return self.options.panels[0]

    # ---- execution ------------------------------------------------------------------------
    async def _execute(self, run: Run) -> None:
        if self.options.flavour == "starter-kit":
            await self._execute_starter_kit(run)
            return
        workbench = self.options.flavour == "dnastack-workbench"
        uploads: list[tuple[str, bytes]] = []
        try:
            if workbench:
                await asyncio.sleep(self.timings.preprocessing_seconds)
                uploads = await self._fetch(run)
                run.state = "QUEUED"
            await asyncio.sleep(self.timings.queued_seconds)
            run.state = "INITIALIZING"
            run.start_time = _now()
            await asyncio.sleep(self.timings.initializing_seconds)
            if not workbench:
                uploads = await self._fetch(run)
        except InputError as problem:
            self._end(run, "PREPROCESSING_ERROR" if workbench else "SYSTEM_ERROR", str(problem))
            return
        run.state = "RUNNING"
        if not await self._detour(run):
            return
        await self._run_tasks(run, uploads, dead_state="SYSTEM_ERROR")

    async def _execute_starter_kit(self, run: Run) -> None:
        """RUNNING, then COMPLETE, EXECUTOR_ERROR (nextflow's ERR) or UNKNOWN (no log to read):
        the Starter Kit has no QUEUED or INITIALIZING, and runs only GitHub workflow URLs."""
        await asyncio.sleep(self.timings.initializing_seconds)
        url = str(run.request.get("workflow_url", ""))
        if not url.startswith(GITHUB):
            self._end(
                run, "EXECUTOR_ERROR", f"Cannot run {url}: only {GITHUB}... workflows run here"
            )
            return
        try:
            uploads = await self._fetch(run)
        except InputError as problem:
            self._end(run, "EXECUTOR_ERROR", str(problem))
            return
        if await self._detour(run):
            await self._run_tasks(run, uploads, dead_state="UNKNOWN")

    async def _detour(self, run: Run) -> bool:
        """The `run_detour` knob: PAUSED/UNKNOWN for a task's time then RUNNING again, or
        PREEMPTED (terminal; only flavours whose state enum has it). False when the run ended."""
        detour = self.faults.current.run_detour
        if detour is None:
            return True
        if detour == "PREEMPTED":
            if self.options.flavour in ("spec", "dnastack-workbench"):
                self._end(run, "PREEMPTED", "The run was preempted: its resources were reclaimed.")
                return False
            return True
        run.state = detour
        await asyncio.sleep(max(self.timings.task_seconds, 0.3))
        run.state = "RUNNING"
        return True

    async def _run_tasks(self, run: Run, uploads: list[tuple[str, bytes]], dead_state: str) -> None:
        try:
            await self._tasks(run, uploads)
        except (ValidationError, InjectedFailure) as problem:
            dead = isinstance(problem, InjectedFailure) and problem.mode == "dead"
            message = problem.message if isinstance(problem, ValidationError) else str(problem)
            task = run.tasks[-1] if run.tasks else None
            if task:
                task.exit_code, task.end_time, task.stderr = 1, _now(), message
            self._end(run, dead_state if dead else "EXECUTOR_ERROR", message)
            return
        self._end(run, "COMPLETE", None)

    def _end(self, run: Run, state: str, error: str | None) -> None:
        if error:
            run.errors.append(error)
            run.stderr.append(error)
        run.state = state
        run.end_time = _now()

    async def _tasks(self, run: Run, uploads: list[tuple[str, bytes]]) -> None:
        spec = self._spec(run, uploads)
        validated = qc = None
        files: dict[str, bytes] = {}
        for step, name, cmd in _TASKS:
            if step == "imputation" and not spec.impute:
                continue
            task = Task(id=f"{run.id[:8]}-{len(run.tasks) + 1}", name=name, cmd=[cmd])
            run.tasks.append(task)
            await asyncio.sleep(self.timings.task_seconds)
            await fault_gate(self.faults, step)
            if step == "validation":
                validated = await validate_all(spec)
                task.stdout = validated.summary
            elif step == "qc" and validated:
                qc = await qc_all(spec, validated)
                task.stdout = qc.summary
                files = reports(validated, qc)
            elif step == "imputation" and validated and qc:
                files = await impute_all(spec, validated, qc) | files
                task.stdout = "Imputation finished."
            task.exit_code, task.end_time = 0, _now()
            run.stdout.append(f"[{name}] done")
        run.outputs = files
        if self.workdir is not None:
            await asyncio.to_thread(self._write_outputs, run)

    def _write_outputs(self, run: Run) -> None:
        for name, data in run.outputs.items():
            path = self.output_path(run, name)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
