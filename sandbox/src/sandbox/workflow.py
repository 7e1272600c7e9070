"""The imputation workflow both kinds of simulator run: validate, QC, impute, package.

Cloudgene jobs and WES runs report progress differently (numeric states and step messages versus
WES states and task logs) but compute the same things, so the computing lives here and the job
engines only sequence it, wait the configured durations, and consult the fault knobs through
`fault_gate` when a job reaches a step.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from sandbox.faults import FaultState, FaultStep
from sandbox.results import chromosome_zip, qc_report
from sandbox.vcf.qc import QcResult, QcSettings, run_qc
from sandbox.vcf.validation import JobParams, ValidatedInput, ValidationLimits, validate_job

__all__ = [
    "STEP_LABELS",
    "InjectedFailure",
    "WorkflowSpec",
    "fault_gate",
    "impute_all",
    "parse_r2",
    "qc_all",
    "reports",
    "validate_all",
]

STEP_LABELS: dict[FaultStep, str] = {
    "validation": "Input Validation",
    "qc": "Quality Control",
    "imputation": "Phasing and Imputation",
    "export": "Export",
}


class InjectedFailure(Exception):
    """Raised when the `fail_at_step` knob matches the step a job reaches."""

    def __init__(self, step: FaultStep, mode: str) -> None:
        self.step = step
        self.mode = mode
        super().__init__(
            f"Error: {STEP_LABELS[step]} failed unexpectedly. Please contact the server administrator."
        )


@dataclass(frozen=True)
class WorkflowSpec:
    """What one job asks for, resolved against the server's panels and limits."""

    uploads: tuple[tuple[str, bytes], ...]
    params: JobParams
    limits: ValidationLimits
    qc: QcSettings
    password: str
    aes: bool
    impute: bool
    r2_filter: float


async def fault_gate(faults: FaultState, step: FaultStep) -> None:
    """Apply the job knobs at the start of `step`: hold while `stuck_jobs`, fail if asked."""
    if step == "imputation":
        # Polled, not an Event: the knob is plain state any admin call may flip at any time.
        while faults.current.stuck_jobs:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
    if faults.current.fail_at_step == step:
        raise InjectedFailure(step, faults.current.fail_mode)


async def validate_all(spec: WorkflowSpec) -> ValidatedInput:
    """The input validation step (raises `ValidationError`); runs off the event loop."""
    return await asyncio.to_thread(validate_job, spec.uploads, spec.params, spec.limits)


async def qc_all(spec: WorkflowSpec, validated: ValidatedInput) -> QcResult:
    return await asyncio.to_thread(
        run_qc, validated.files, spec.params.build, spec.params.panel_build, spec.qc
    )


def _impute(spec: WorkflowSpec, validated: ValidatedInput, qc: QcResult) -> dict[str, bytes]:
    outputs: dict[str, bytes] = {}
    for vcf in validated.files:
        kept = qc.kept.get(vcf.name)
        if not kept:
            continue
        name, data = chromosome_zip(
            vcf.chromosome,
            vcf.samples,
            kept,
            password=spec.password,
            panel=spec.params.panel_id,
            r2_filter=spec.r2_filter,
            aes=spec.aes,
        )
        outputs[name] = data
    return outputs


async def impute_all(
    spec: WorkflowSpec, validated: ValidatedInput, qc: QcResult
) -> dict[str, bytes]:
    """Encrypted `chr_<n>.zip` per chromosome with chunks left after QC."""
    return await asyncio.to_thread(_impute, spec, validated, qc)


def reports(validated: ValidatedInput, qc: QcResult) -> dict[str, bytes]:
    """The QC report files MIS2 publishes next to the zips."""
    text = qc_report(validated.summary, qc.summary)
    html = (
        "<html><head><title>Quality Control Report</title></head><body><pre>"
        + qc.summary
        + "</pre></body></html>"
    )
    return {"qc_report.txt": text, "quality-control.html": html.encode()}


def parse_r2(value: str) -> float:
    """r2Filter as a number; anything unparsable means no filter, as Minimac4 would ignore it."""
    try:
        return float(value)
    except ValueError:
        return 0.0
