"""The WES API in four flavours (spec §2, §3) as a FastAPI app. `build_wes(options)` returns a
ready `Simulator`; routes are thin, shapes live in `flavours`, execution in `runs`.
"""

from __future__ import annotations

import base64
import json
import secrets
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException

from sandbox.faults import FaultMiddleware, FaultState, admin_router
from sandbox.server import Simulator
from sandbox.wes.flavours import (
    WORKFLOW_TYPES,
    error_response,
    flavour_error,
    published_panels,
    run_log,
    service_info,
    spring_default_error,
    task_log,
)
from sandbox.wes.options import WesOptions
from sandbox.wes.runs import Run, RunEngine, Task, iso

__all__ = ["build_wes"]

_JSON_PARTS = ("workflow_params", "tags", "workflow_engine_parameters")
_SK_REQUIRED = ("workflow_type", "workflow_type_version", "workflow_url", "workflow_params")
_SK_TYPES = ("CWL", "WDL", "NEXTFLOW")


class WesError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class _SpringError(Exception):
    """A request Spring rejects before the controller runs (its default error JSON)."""

    def __init__(self, status: int = 400, message: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def part_content_types(body: bytes, content_type: str) -> dict[str, str]:
    """Each multipart part's name -> its Content-Type header ("" when it has none).

    Starlette's form parser drops the headers of non-file parts, so they are read here with
    python-multipart's parser (the one Starlette itself uses)."""
    _, params = parse_options_header(content_type)
    boundary = params.get(b"boundary")
    if not boundary:
        return {}
    found: dict[str, str] = {}
    headers: dict[str, str] = {}
    field: list[bytes] = []
    value: list[bytes] = []

    def header_field(data: bytes, start: int, end: int) -> None:
        field.append(data[start:end])

    def header_value(data: bytes, start: int, end: int) -> None:
        value.append(data[start:end])

    def header_end() -> None:
        headers[b"".join(field).decode("latin-1").lower()] = b"".join(value).decode("latin-1")
        field.clear()
        value.clear()

    def headers_finished() -> None:
        _, disposition = parse_options_header(headers.get("content-disposition", ""))
        name = disposition.get(b"name", b"").decode("latin-1")
        found[name] = headers.get("content-type", "")
        headers.clear()

    parser = MultipartParser(
        boundary,
        {
            "on_header_field": header_field,
            "on_header_value": header_value,
            "on_header_end": header_end,
            "on_headers_finished": headers_finished,
        },
    )
    parser.write(body)
    parser.finalize()
    return found


class Wes:
    def __init__(self, options: WesOptions, faults: FaultState) -> None:
        self.options = options
        self.flavour = options.flavour
        self.faults = faults
        self.engine = RunEngine(options, faults)
        self.issued: dict[str, float] = {}
        self.prefix = (
            f"/{options.namespace}/ga4gh/wes/v1"
            if self.flavour == "dnastack-workbench"
            else "/ga4gh/wes/v1"
        )
        if self.flavour == "starter-kit":
            self.engine.workdir = Path(tempfile.mkdtemp(prefix="sandbox-wes-"))

    async def shutdown(self) -> None:
        await self.engine.shutdown()
        if self.engine.workdir:
            shutil.rmtree(self.engine.workdir, ignore_errors=True)

    # ---- auth -----------------------------------------------------------------------------
    def token_valid(self, request: Request) -> bool:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token or self.faults.current.expired_tokens:
            return False
        if token in self.options.accepted_tokens():
            return True
        return self.issued.get(token, 0) > time.time()

    def authorize(self, request: Request) -> None:
        if self.options.auth_required() and not self.token_valid(request):
            raise WesError(401, "The request is unauthorized: a valid bearer token is required.")

    def issue_token(self, form: FormData, request: Request) -> Response:
        """OAuth2 client-credentials grant (form fields or HTTP Basic client authentication)."""
        client_id, secret = str(form.get("client_id", "")), str(form.get("client_secret", ""))
        basic = request.headers.get("authorization", "")
        if basic.lower().startswith("basic "):
            client_id, _, secret = base64.b64decode(basic[6:]).decode().partition(":")
        if form.get("grant_type") != "client_credentials":
            return JSONResponse({"error": "unsupported_grant_type"}, status_code=400)
        if not any(
            c.client_id == client_id and c.client_secret == secret for c in self.options.clients
        ):
            return JSONResponse(
                {"error": "invalid_client", "error_description": "Bad client credentials"},
                status_code=401,
            )
        token = secrets.token_urlsafe(32)
        self.issued[token] = time.time() + self.options.token_ttl_seconds
        body = {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": self.options.token_ttl_seconds,
        }
        if form.get("scope"):
            body["scope"] = str(form["scope"])
        return JSONResponse(body)

    # ---- runs -----------------------------------------------------------------------------
    def run(self, run_id: str) -> Run:
        found = self.engine.runs.get(run_id)
        if found is None:
            messages = {
                "starter-kit": f"No WES Run by the id: {run_id}",
                "dnastack-cromwell": f"Workflow execution with run_id {run_id} does not exist.",
            }
            raise WesError(404, messages.get(self.flavour, f"Run {run_id} not found."))
        return found

    def urls(self, request: Request, run: Run) -> dict[str, Any]:
        base = str(request.base_url).rstrip("/")
        runs = f"{base}{self.prefix}/runs/{run.id}"
        if self.flavour == "starter-kit":
            logs = f"{base}/ga4gh/wes/v1/logs/nextflow"
            workdirs = "work/" + run.id[:2]
            return {
                "stdout": f"{logs}/stdout/{run.id}?workdirs={workdirs}",
                "stderr": f"{logs}/stderr/{run.id}?workdirs={workdirs}",
                "tasks": None,
                "task_log": lambda t: tuple(
                    f"{logs}/{c}/{run.id}/{t.id[:2]}/{t.id}" for c in ("stdout", "stderr")
                ),
                "outputs": {n: self.engine.output_path(run, n).as_uri() for n in run.outputs},
            }
        return {
            "stdout": f"{runs}/logs/stdout",
            "stderr": f"{runs}/logs/stderr",
            "tasks": f"{runs}/tasks",
            "task_log": lambda t: tuple(
                f"{runs}/tasks/{t.id}/logs/{c}" for c in ("stdout", "stderr")
            ),
            "outputs": {n: f"{runs}/outputs/{n}" for n in run.outputs},
        }

    def list_runs(self, request: Request) -> dict[str, Any]:
        runs = list(reversed(self.engine.runs.values()))
        if self.flavour == "starter-kit":
            # Only runs with a stored final RunLog: COMPLETE runs whose log was read (spec §3.1).
            listed = [r for r in runs if r.state == "COMPLETE" and r.log_fetched]
            return {"runs": [{"run_id": r.id, "state": r.state} for r in listed]}
        page, token = paginate(runs, request)
        if self.flavour == "spec":
            return self.last_page({"runs": self._spec_summaries(page)}, token)
        if self.flavour == "dnastack-cromwell":
            body: dict[str, Any] = {"runs": [{"run_id": r.id, "state": r.state} for r in page]}
            return body | ({"next_page_token": token} if token else {})
        items = [
            {
                "run_id": r.id,
                "state": r.state,
                "start_time": iso(r.start_time or r.submitted_at),
                "end_time": iso(r.end_time),
                "workflow_url": r.request.get("workflow_url"),
                "workflow_type": r.request.get("workflow_type"),
                "workflow_type_version": r.request.get("workflow_type_version"),
                "tags": r.request.get("tags") or {},
            }
            for r in page
        ]
        body = {"runs": items, "pagination": {"total_elements": len(runs)}}
        return body | ({"next_page_token": token} if token else {})

    @staticmethod
    def _spec_summaries(page: list[Run]) -> list[dict[str, Any]]:
        return [
            {
                "run_id": r.id,
                "state": r.state,
                "start_time": iso(r.start_time),
                "end_time": iso(r.end_time),
                "tags": r.request.get("tags") or {},
            }
            for r in page
        ]

    def last_page(self, body: dict[str, Any], token: str) -> dict[str, Any]:
        """``next_page_token`` as the spec flavour's knob says it looks on the last page."""
        if token:
            return body | {"next_page_token": token}
        knob = self.options.last_page_token
        if knob == "absent":
            return body
        return body | {"next_page_token": None if knob == "null" else ""}

    async def parse_submission(self, request: Request) -> tuple[dict[str, Any], dict[str, bytes]]:
        if self.flavour == "dnastack-workbench":
            return await self._json_submission(request), {}
        if self.flavour == "dnastack-cromwell":
            await self._check_json_parts(request)
        async with request.form() as form:
            if self.flavour == "starter-kit":
                return self._starter_kit_submission(form), {}
            return self._multipart_submission(form), await self._attachments(form)

    @staticmethod
    async def _check_json_parts(request: Request) -> None:
        """DNAstack's controller binds workflow_params/tags/workflow_engine_parameters with
        ``@RequestPart Map<...>``: Spring reads them with a message converter chosen by the part's
        Content-Type, so a part without ``application/json`` is a 415 (DNW WesV1Controller)."""
        types = part_content_types(await request.body(), request.headers.get("content-type", ""))
        for name in _JSON_PARTS:
            if name in types and "json" not in types[name]:
                raise _SpringError(415)

    async def _json_submission(self, request: Request) -> dict[str, Any]:
        if "json" not in request.headers.get("content-type", ""):
            raise WesError(
                415, f"Content-Type '{request.headers.get('content-type', '')}' is not supported."
            )
        try:
            body = json.loads(await request.body())
        except ValueError:
            raise WesError(400, "Request body is not valid JSON.") from None
        if not isinstance(body, dict) or not body.get("workflow_url"):
            raise WesError(400, "workflow_url is required.")
        return {k: v for k, v in body.items() if v is not None}

    def _starter_kit_submission(self, form: FormData) -> dict[str, Any]:
        """`@RequestParam`s: a missing one or a non-enum type is Spring's 400; anything else 409."""
        for name in _SK_REQUIRED:
            if name not in form:
                raise _SpringError()
        workflow_type = str(form["workflow_type"])
        if workflow_type not in _SK_TYPES:
            raise _SpringError()
        versions = WORKFLOW_TYPES["starter-kit"].get(workflow_type)
        conflict = WesError(409, "Could not register new WorkflowRun")
        if versions is None or str(form["workflow_type_version"]) not in versions:
            raise conflict
        request: dict[str, Any] = {}
        try:
            for name in (*_SK_REQUIRED, "tags", "workflow_engine_parameters"):
                if name in form:
                    request[name] = (
                        json.loads(str(form[name])) if name in _JSON_PARTS else str(form[name])
                    )
        except ValueError:
            raise conflict from None
        if not isinstance(request["workflow_params"], dict):
            raise conflict
        return request

    def _multipart_submission(self, form: FormData) -> dict[str, Any]:
        """WES 1.1 `RunRequest` parts (DNW needs only `workflow_url`)."""
        dnw = self.flavour == "dnastack-cromwell"
        required = (
            ("workflow_url",) if dnw else ("workflow_type", "workflow_type_version", "workflow_url")
        )
        for name in required:
            if not isinstance(form.get(name), str) or not str(form.get(name)):
                if dnw:
                    raise _SpringError(400, f"Required part '{name}' is not present.")
                raise WesError(400, f"Missing required field: {name}")
        request: dict[str, Any] = {}
        for name in (
            "workflow_type",
            "workflow_type_version",
            "workflow_url",
            "workflow_engine",
            "workflow_engine_version",
        ):
            if isinstance(form.get(name), str):
                request[name] = str(form[name])
        for name in _JSON_PARTS:
            raw = form.get(name)
            if raw is None:
                continue
            try:
                value = json.loads(str(raw))
            except ValueError:
                raise WesError(400, f"{name} is not valid JSON") from None
            if not isinstance(value, dict):
                raise WesError(400, f"{name} must be a JSON object")
            request[name] = value
        types = WORKFLOW_TYPES[self.flavour]
        if "workflow_type" in request and request["workflow_type"] not in types:
            raise WesError(
                400,
                f"Unsupported workflow_type: {request['workflow_type']}. Supported: {', '.join(types)}",
            )
        versions = types.get(request.get("workflow_type", ""), [])
        if (
            "workflow_type_version" in request
            and versions
            and request["workflow_type_version"] not in versions
        ):
            raise WesError(
                400, f"Unsupported workflow_type_version: {request['workflow_type_version']}"
            )
        if "workflow_engine_version" in request and "workflow_engine" not in request:
            raise WesError(400, "workflow_engine is required when workflow_engine_version is given")
        return request

    async def _attachments(self, form: FormData) -> dict[str, bytes]:
        files: dict[str, bytes] = {}
        for name, value in form.multi_items():
            if name != "workflow_attachment":
                continue
            if not isinstance(value, UploadFile) or not value.filename:
                raise WesError(400, "Each workflow_attachment part needs a file name")
            if ".." in value.filename.split("/") or ".." in value.filename:
                raise WesError(400, f"Invalid workflow_attachment file name: {value.filename}")
            files[value.filename] = await value.read()
        return files


def paginate(runs: list[Run], request: Request) -> tuple[list[Run], str]:
    """Offset paging with an opaque token; the last page has `next_page_token` ""."""
    try:
        size = int(request.query_params.get("page_size", "10"))
        token = request.query_params.get("page_token", "")
        start = int(base64.urlsafe_b64decode(token.encode()).decode()) if token else 0
    except ValueError:
        raise WesError(400, "Invalid page_size or page_token") from None
    if size < 1:
        raise WesError(400, "page_size must be positive")
    end = start + size
    next_token = base64.urlsafe_b64encode(str(end).encode()).decode() if end < len(runs) else ""
    return runs[start:end], next_token


def _tasks_page(tasks: list[Task], request: Request) -> tuple[list[Task], str]:
    try:
        size = int(request.query_params.get("page_size", "100") or 100)
        token = request.query_params.get("page_token", "")
        start = int(base64.urlsafe_b64decode(token.encode()).decode()) if token else 0
    except ValueError:
        raise WesError(400, "Invalid page_size or page_token") from None
    if size < 1 or start < 0:
        raise WesError(400, "Invalid page_size or page_token")
    end = start + size
    return tasks[start:end], (
        base64.urlsafe_b64encode(str(end).encode()).decode() if end < len(tasks) else ""
    )


def _routes(wes: Wes) -> APIRouter:
    router = APIRouter()
    p = wes.prefix
    flavour = wes.flavour

    @router.get(f"{p}/service-info")
    async def get_service_info(request: Request) -> Response:
        show_counts = not wes.options.auth_required() or wes.token_valid(request)
        return service_info(
            flavour,
            list(wes.engine.runs.values()),
            str(request.base_url).rstrip("/"),
            show_counts,
            published_panels(wes.options.panels) if wes.options.publish_panels else None,
        )

    @router.get(f"{p}/runs")
    async def list_runs(request: Request) -> dict[str, Any]:
        wes.authorize(request)
        return wes.list_runs(request)

    @router.post(f"{p}/runs")
    async def submit(request: Request) -> dict[str, Any]:
        wes.authorize(request)
        body, attachments = await wes.parse_submission(request)
        run = wes.engine.submit(body, attachments)
        return (
            {"run_id": run.id, "state": run.state}
            if flavour == "dnastack-workbench"
            else {"run_id": run.id}
        )

    @router.get(f"{p}/runs/{{run_id}}")
    async def get_run(request: Request, run_id: str) -> dict[str, Any]:
        wes.authorize(request)
        run = wes.run(run_id)
        run.log_fetched = True
        return run_log(run, flavour, wes.urls(request, run))

    @router.get(f"{p}/runs/{{run_id}}/status")
    async def get_status(request: Request, run_id: str) -> dict[str, Any]:
        wes.authorize(request)
        run = wes.run(run_id)
        return {"run_id": run.id, "state": run.state}

    @router.post(f"{p}/runs/{{run_id}}/cancel", response_model=None)
    async def cancel(request: Request, run_id: str) -> dict[str, Any] | Response:
        wes.authorize(request)
        if flavour == "starter-kit":
            return Response(status_code=200)  # the Starter Kit's cancel is `return null;`
        run = wes.run(run_id)
        wes.engine.cancel(run)
        return {"run_id": run.id}

    if flavour in ("spec", "dnastack-workbench"):

        @router.get(f"{p}/runs/{{run_id}}/tasks")
        async def list_tasks(request: Request, run_id: str) -> dict[str, Any]:
            wes.authorize(request)
            run = wes.run(run_id)
            page, token = _tasks_page(run.tasks, request)
            logs = [task_log(t, flavour, wes.urls(request, run)["task_log"](t)) for t in page]
            if flavour == "spec":
                return wes.last_page({"task_logs": logs}, token)
            return {"tasks": logs} | ({"next_page_token": token} if token else {})

        @router.get(f"{p}/runs/{{run_id}}/tasks/{{task_id}}")
        async def get_task(request: Request, run_id: str, task_id: str) -> dict[str, Any]:
            wes.authorize(request)
            run = wes.run(run_id)
            task = next((t for t in run.tasks if t.id == task_id), None)
            if task is None:
                raise WesError(404, f"Task {task_id} not found in run {run_id}.")
            return task_log(task, flavour, wes.urls(request, run)["task_log"](task))

        @router.get(f"{p}/runs/{{run_id}}/tasks/{{task_id}}/logs/{{stream}}")
        async def task_stream(
            request: Request, run_id: str, task_id: str, stream: str
        ) -> PlainTextResponse:
            wes.authorize(request)
            task = next((t for t in wes.run(run_id).tasks if t.id == task_id), None)
            if task is None or stream not in ("stdout", "stderr"):
                raise WesError(404, f"Task {task_id} not found in run {run_id}.")
            return PlainTextResponse(getattr(task, stream))

    if flavour == "starter-kit":

        @router.get("/ga4gh/wes/v1/logs/nextflow/{channel}/{run_id}")
        @router.get("/ga4gh/wes/v1/logs/nextflow/{channel}/{run_id}/{subdir_a}/{subdir_b}")
        async def nextflow_logs(channel: str, run_id: str) -> PlainTextResponse:
            run = wes.run(run_id)
            return PlainTextResponse("\n".join(run.stdout if channel == "stdout" else run.stderr))

    else:

        @router.get(f"{p}/runs/{{run_id}}/logs/{{stream}}")
        async def run_stream(request: Request, run_id: str, stream: str) -> PlainTextResponse:
            wes.authorize(request)
            run = wes.run(run_id)
            if stream not in ("stdout", "stderr"):
                raise WesError(404, f"No log {stream}")
            return PlainTextResponse("\n".join(run.stdout if stream == "stdout" else run.stderr))

        @router.get(f"{p}/runs/{{run_id}}/outputs/{{name}}")
        async def output(request: Request, run_id: str, name: str) -> Response:
            wes.authorize(request)
            run = wes.run(run_id)
            if name not in run.outputs:
                raise WesError(404, f"Output {name} not found in run {run_id}.")
            return Response(run.outputs[name], media_type="application/octet-stream")

    if flavour == "dnastack-workbench":

        @router.post("/oauth/token")
        async def token(request: Request) -> Response:
            async with request.form() as form:
                return wes.issue_token(form, request)

    return router


def build_wes(options: WesOptions | None = None) -> Simulator:
    """A WES simulator of the given flavour (not yet serving)."""
    options = options or WesOptions()
    faults = FaultState(options.faults, seed=options.seed)
    wes = Wes(options, faults)
    api = FastAPI(
        title=f"WES simulator ({options.flavour})",
        docs_url="/_sandbox/docs",
        openapi_url="/_sandbox/openapi.json",
    )
    api.include_router(_routes(wes))
    api.include_router(admin_router(faults))

    @api.exception_handler(WesError)
    async def wes_error(_: Request, problem: WesError) -> Response:
        return error_response(options.flavour, problem.status, problem.message)

    @api.exception_handler(_SpringError)
    async def spring_error(request: Request, problem: _SpringError) -> Response:
        return spring_default_error(request.url.path, problem.status, problem.message)

    # Unknown routes, wrong methods, unparsable parameters, anything unexpected: the flavour's own
    # error body (the spec's {msg, status_code}; Spring's default JSON for the Java servers),
    # never FastAPI's {"detail": ...}.
    @api.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, problem: StarletteHTTPException) -> Response:
        return flavour_error(options.flavour, request.url.path, problem.status_code)

    @api.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, problem: RequestValidationError) -> Response:
        return flavour_error(options.flavour, request.url.path, 400)

    @api.exception_handler(Exception)
    async def unexpected(request: Request, problem: Exception) -> Response:
        return flavour_error(options.flavour, request.url.path, 500)

    info: dict[str, Any] = {"prefix": wes.prefix, "tokens": options.accepted_tokens()}
    if options.flavour == "dnastack-workbench":
        info["clients"] = [c.model_dump() for c in options.clients]
    return Simulator(
        kind="wes",
        flavour=options.flavour,
        app=FaultMiddleware(api, faults),
        faults=faults,
        shutdown=wes.shutdown,
        info=info,
    )
