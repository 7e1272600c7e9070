"""JSON bodies of the Cloudgene API, per flavour.

CG3 (Micronaut) renders `JobResponse`/`PageResponse`; CG2 (Restlet + json-lib) dumps the job
bean with a few extra keys (`finishedOn`, `running`, `complete`, `progress`, `setupRunning`) and
omits steps and outputs from list items. Error bodies differ too: CG3 `{"message","success"}`,
CG2 `{"success","message"}` with the message HTML-escaped.
"""

from __future__ import annotations

import time
from typing import Any

from sandbox.cloudgene.jobs import ACTIVE, EXPORTING, RUNNING, Job, JobEngine
from sandbox.cloudgene.submit import escape_html
from sandbox.results import human_size
from sandbox.users import User

__all__ = ["error_body", "java_date", "job_json", "page_json"]


def error_body(flavour: str, message: str) -> dict[str, Any]:
    if flavour == "cg2":
        return {"success": False, "message": escape_html(message)}
    return {"message": message, "success": False}


def java_date(epoch_seconds: float) -> str:
    """`java.util.Date.toString()` in UTC, as CG2 writes it into token messages."""
    return time.strftime("%a %b %d %H:%M:%S UTC %Y", time.gmtime(epoch_seconds))


def _files(job: Job) -> list[dict[str, Any]]:
    return [
        {
            "name": f.name,
            "path": f"{job.id}/output/{f.name}",
            "hash": f.hash,
            "size": human_size(len(f.data or b"")),
            "count": f.count,
        }
        for f in job.outputs
    ]


def _output_params(job: Job, flavour: str) -> list[dict[str, Any]]:
    param: dict[str, Any] = {"id": 7, "name": "output", "description": "Downloads"}
    if flavour == "cg3":
        param["download"] = True
    param |= {"hash": job.param_hash, "files": _files(job)}
    return [param]


def _steps(job: Job, flavour: str) -> list[dict[str, Any]]:
    steps = []
    for step in job.steps:
        if flavour == "cg3":
            messages = [
                {"success": True, "message": m.text, "type": m.type, "time": m.time}
                for m in step.messages
            ]
            steps.append(
                {"id": step.id, "name": step.name, "empty": not messages, "logMessages": messages}
            )
        else:
            messages = [{"message": m.text, "type": m.type, "time": m.time} for m in step.messages]
            steps.append({"id": step.id, "name": step.name, "logMessages": messages})
    return steps


def job_json(
    job: Job, engine: JobEngine, viewer: User | None, flavour: str, *, listing: bool = False
) -> dict[str, Any]:
    """One job as the flavour returns it from status, detail, cancel, delete and list."""
    position = engine.position_in_queue(job)
    if flavour == "cg3":
        return {
            "application": job.app_label,
            "applicationId": job.app_id,
            "deletedOn": job.deleted_on,
            "endTime": job.end_time,
            "id": job.id,
            "name": job.name,
            "logs": f"logs/{job.id}" if viewer and viewer.admin else "",
            "state": job.state,
            "positionInQueue": position,
            "userAgent": job.user_agent,
            "startTime": job.start_time,
            "submittedOn": job.submitted_on,
            "username": job.user.username,
            "currentTime": int(time.time() * 1000),
            "workspaceSize": None,
            "steps": _steps(job, flavour),
            "outputParams": _output_params(job, flavour),
        }
    body: dict[str, Any] = {
        "id": job.id,
        "name": job.name,
        "state": job.state,
        "application": job.app_label,
        "userAgent": job.user_agent,
        "submittedOn": job.submitted_on,
        "startTime": job.start_time,
        "endTime": job.end_time,
        "finishedOn": job.end_time,
        "positionInQueue": position,
        "complete": job.state not in ACTIVE,
        "progress": -1,
        "setupRunning": False,
    }
    if not listing:
        body |= {
            "applicationId": job.app_id,
            "deletedOn": job.deleted_on,
            "running": job.state in (RUNNING, EXPORTING),
            "steps": _steps(job, flavour),
            "outputParams": _output_params(job, flavour),
        }
    return body


def page_json(
    jobs: list[dict[str, Any]], count: int, page: int, page_size: int, flavour: str
) -> dict[str, Any]:
    """`PageResponse` (CG3) / `PageUtil.createPageObject` (CG2): same arithmetic, CG2 leaves out
    `pageSize` and sends `prev`/`next` only when such a page exists."""
    body: dict[str, Any] = {"count": count}
    if flavour == "cg3":
        body["pageSize"] = page_size
        body |= {"prev": None, "next": None}
    if count:
        body["page"] = page
        pages_total = (count + page_size - 1) // page_size
        if page > 1:
            body["prev"] = page - 1
        if page < pages_total:
            body["next"] = page + 1
        body["pages"] = (
            [p for p in range(page - 3, page) if p > 0]
            + [page]
            + [p for p in range(page + 1, page + 4) if p <= pages_total]
        )
    else:
        body |= {"page": 0, "pages": []}
    body["data"] = jobs
    return body
