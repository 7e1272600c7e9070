"""What differs between the WES flavours: service-info, error bodies and JSON shapes.

spec: WES 1.1 as written. starter-kit: GA4GH Starter Kit 0.3.2 (spec §3.1). dnastack-cromwell:
DNAstack's cromwell-wes-service (§3.2). dnastack-workbench: DNAstack Workbench eWES (§3.3).
"""

from __future__ import annotations

import json
import secrets
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from fastapi.responses import JSONResponse, Response

from sandbox.cloudgene.options import Panel
from sandbox.wes.runs import Run, Task, iso

__all__ = [
    "PANELS_TAG",
    "STARTER_KIT_SERVICE_INFO",
    "error_response",
    "flavour_error",
    "published_panels",
    "run_log",
    "service_info",
    "spring_default_error",
    "task_log",
]

# Captured from ILIFU (spec §3.1); served byte for byte.
STARTER_KIT_SERVICE_INFO = (
    b'{"id":"org.ga4gh.starterkit.wes","name":"GA4GH Starter Kit WES Service","description":"An open source, '
    b'community-driven implementation of the GA4GH Workflow Execution Service (WES)API specification.",'
    b'"contactUrl":"mailto:info@ga4gh.org","documentationUrl":"https://github.com/ga4gh/ga4gh-starter-kit-wes",'
    b'"createdAt":"2020-01-15T12:00:00Z","updatedAt":"2020-01-15T12:00:00Z","environment":"test","version":"0.3.2",'
    b'"type":{"group":"org.ga4gh","artifact":"wes","version":"1.0.1"},"organization":{"name":"Global Alliance for '
    b'Genomics and Health","url":"https://ga4gh.org"},"workflow_type_versions":{"WDL":["1.0"],"NEXTFLOW":["21.04.0"]},'
    b'"workflow_engine_versions":{"NATIVE":"1.0.0"}}'
)

# The service-info tag under which FedImpute nodes publish their reference panels (a JSON array as
# a string: WES tags are a string-to-string map); the registry's sync-panels reads it.
PANELS_TAG = "fedimpute.reference_panels"

WORKFLOW_TYPES: dict[str, dict[str, list[str]]] = {
    "spec": {"CWL": ["v1.0"], "WDL": ["1.0"]},
    "starter-kit": {"WDL": ["1.0"], "NEXTFLOW": ["21.04.0"]},
    "dnastack-cromwell": {"WDL": ["draft-2", "1.0"]},
    "dnastack-workbench": {"WDL": ["1.0"], "NEXTFLOW": ["22.10.0", "23.10.0"]},
}

_REASONS = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    415: "Unsupported Media Type",
    500: "Internal Server Error",
}


def _state_counts(runs: list[Run]) -> dict[str, int]:
    return dict(Counter(r.state for r in runs))


def published_panels(panels: list[Panel]) -> dict[str, str]:
    """The ``tags`` entry that publishes ``panels`` the way the imputation node does; a run names
    one by its ``id`` in ``refpanel``."""
    listed = [
        {
            "id": p.id,
            "name": p.name,
            "version": p.version,
            "build": p.build,
            "populations": [pop.id for pop in p.populations],
        }
        for p in panels
    ]
    return {PANELS_TAG: json.dumps(listed, separators=(",", ":"))}


def service_info(
    flavour: str,
    runs: list[Run],
    base_url: str,
    show_counts: bool,
    tags: dict[str, str] | None = None,
) -> Response:
    """The service-info body of the flavour (the Starter Kit's is the captured bytes; ``tags``
    go only into the spec flavour's, the vendor flavours publish none)."""
    if flavour == "starter-kit":
        return Response(STARTER_KIT_SERVICE_INFO, media_type="application/json")
    types = WORKFLOW_TYPES[flavour]
    if flavour == "dnastack-cromwell":
        body: dict[str, Any] = {
            "workflow_type_versions": types,
            "supported_wes_versions": ["1.0.0"],
            "supported_filesystem_protocols": ["file"],
            "workflow_engine_versions": {"cromwell": "47"},
            "default_workflow_engine_parameters": [],
            "auth_instruction_url": f"{base_url}/.well-known/openid-configuration",
            "tags": {},
        }
        if show_counts:
            body["system_state_counts"] = _state_counts(runs)
        return JSONResponse(body)
    workbench = flavour == "dnastack-workbench"
    body = {
        "id": "com.dnastack.workbench.ewes" if workbench else "org.fedimpute.sandbox.wes",
        "name": "Workbench eWES (sandbox)" if workbench else "FedImpute sandbox WES",
        "type": (
            {"group": "com.dnastack.workbench", "artifact": "ewes-service", "version": "1.0.0"}
            if workbench
            else {"group": "org.ga4gh", "artifact": "wes", "version": "1.1.0"}
        ),
        "organization": {"name": "FedImpute sandbox", "url": "https://example.org"},
        "version": "1.0.0",
        "workflow_type_versions": {k: {"workflow_type_version": v} for k, v in types.items()},
        "supported_wes_versions": ["1.0.0", "1.1.0"],
        "supported_filesystem_protocols": ["file", "http", "https"],
        "workflow_engine_versions": {"sandbox-imputation": {"workflow_engine_version": ["1.0"]}},
        "default_workflow_engine_parameters": [],
        "system_state_counts": _state_counts(runs),
        "auth_instructions_url": f"{base_url}/auth",
        "tags": (tags or {}) if flavour == "spec" else {},
    }
    return JSONResponse(body)


def _timestamp() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def error_response(flavour: str, status: int, message: str) -> Response:
    """The flavour's error body; DNAstack's Spring Security gives a bare 401."""
    if flavour == "starter-kit":
        body: dict[str, Any] = {
            "timestamp": _timestamp(),
            "status_code": status,
            "error": _REASONS.get(status, "Error"),
            "msg": message,
        }
    elif flavour == "dnastack-cromwell":
        if status == 401:
            return Response(status_code=401, headers={"WWW-Authenticate": "Bearer"})
        body = {"msg": message, "error_code": status}
    elif flavour == "dnastack-workbench":
        if status == 401:
            return Response(status_code=401, headers={"WWW-Authenticate": "Bearer"})
        body = {
            "timestamp": _timestamp(),
            "msg": message,
            "error_code": status,
            "trace_id": secrets.token_hex(8),
        }
    else:
        body = {"msg": message, "status_code": status}
    return JSONResponse(body, status_code=status)


def spring_default_error(path: str, status: int = 400, message: str | None = None) -> Response:
    """Spring Boot's default error JSON (the Starter Kit hides `message`; DNW shows it)."""
    body: dict[str, Any] = {
        "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds"),
        "status": status,
        "error": _REASONS.get(status, "Error"),
    }
    if message:
        body["message"] = message
    body["path"] = path
    return JSONResponse(body, status_code=status)


def flavour_error(flavour: str, path: str, status: int) -> Response:
    """An error the framework raises (unknown route, 405, bad parameter): the spec flavour
    answers ``{msg, status_code}`` as sapporo does; the Java servers Spring's default JSON."""
    if flavour == "spec":
        return error_response(flavour, status, _REASONS.get(status, "Error"))
    return spring_default_error(path, status)


def task_log(task: Task, flavour: str, log_urls: tuple[str, str]) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": task.name,
        "cmd": task.cmd,
        "start_time": iso(task.start_time),
        "end_time": iso(task.end_time),
        "stdout": log_urls[0],
        "stderr": log_urls[1],
        "exit_code": task.exit_code,
    }
    if flavour == "spec":
        body = {"id": task.id, **body, "system_logs": [], "tes_uri": None}
    elif flavour == "dnastack-workbench":
        body = {
            "task_id": task.id,
            **body,
            "state": "COMPLETE"
            if task.exit_code == 0
            else ("EXECUTOR_ERROR" if task.exit_code else "RUNNING"),
        }
    elif flavour == "starter-kit" and task.end_time is None:
        # While a Starter Kit run is RUNNING its task logs may lack name and end_time (spec §3.1).
        body = {k: v for k, v in body.items() if k not in ("name", "end_time", "exit_code")}
    return body


def run_log(run: Run, flavour: str, urls: dict[str, Any]) -> dict[str, Any]:
    """The RunLog of a run in the flavour's shape; `urls` has outputs, logs and tasks URLs."""
    outputs = urls["outputs"]
    log: dict[str, Any] = {
        "name": "imputation",
        "cmd": ["nextflow run imputationserver2 -profile sandbox"],
        "start_time": iso(run.start_time),
        "end_time": iso(run.end_time),
        "stdout": urls["stdout"],
        "stderr": urls["stderr"],
        "exit_code": None if run.end_time is None else (0 if run.state == "COMPLETE" else 1),
    }
    tasks = [task_log(t, flavour, urls["task_log"](t)) for t in run.tasks]
    if flavour == "starter-kit":
        body = {
            "run_id": run.id,
            "request": run.request,
            "state": run.state,
            "run_log": log,
            "task_logs": tasks,
            "outputs": outputs,
        }
        cleaned: dict[str, Any] = _drop_none(body)
        return cleaned
    body = {"run_id": run.id, "request": run.request, "state": run.state, "run_log": log}
    if flavour == "spec":
        log["system_logs"] = run.errors
        body |= {"task_logs_url": urls["tasks"], "task_logs": tasks}
    elif flavour == "dnastack-workbench":
        body |= {
            "engine_id": "sandbox-engine",
            "errors": run.errors,
            "task_logs_url": urls["tasks"],
            "task_logs": tasks,
        }
    else:
        body["task_logs"] = tasks
    body["outputs"] = outputs
    return body


def _drop_none(value: Any) -> Any:
    """Jackson NON_NULL, recursively (the Starter Kit's models)."""
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_none(v) for v in value]
    return value
