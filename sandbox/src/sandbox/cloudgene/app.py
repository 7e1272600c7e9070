"""The Cloudgene REST API (spec §4) as a FastAPI app; routes are thin, rules live in the modules
they name. `build_cloudgene(options)` returns a ready `Simulator`.
"""

from __future__ import annotations

import secrets
import time
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Form, Request
from fastapi.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response

from sandbox.cloudgene.app_form import app_form, app_inputs
from sandbox.cloudgene.jobs import DEAD, DELETED, SUCCESS, Job, JobEngine, OutputFile
from sandbox.cloudgene.options import CloudgeneOptions, Panel
from sandbox.cloudgene.submit import ParsedForm, SubmitError, parse_form
from sandbox.cloudgene.views import error_body, java_date, job_json, page_json
from sandbox.faults import FaultMiddleware, FaultState, admin_router
from sandbox.results import generate_password
from sandbox.server import Simulator
from sandbox.users import User
from sandbox.vcf.qc import QcSettings
from sandbox.vcf.validation import JobParams, ValidationLimits
from sandbox.workflow import WorkflowSpec, parse_r2

__all__ = ["build_cloudgene"]

PAGE_SIZE = 15
OBJECT_STORE = "/_object-store/results"  # where redirected downloads land (a stand-in for S3)
SUBMITTED = "Your job was successfully added to the job queue."
_MEDIA = {".zip": "application/zip", ".txt": "text/plain", ".html": "text/html"}


class CloudgeneError(Exception):
    """An error answer; `message=None` means an empty body (CG3's bare 401)."""

    def __init__(self, status: int, message: str | None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class Cloudgene:
    """State and rules of one simulated Cloudgene server, used by the routes below."""

    def __init__(self, options: CloudgeneOptions, faults: FaultState) -> None:
        self.options = options
        self.flavour = options.flavour
        self.faults = faults
        self.engine = JobEngine(options, faults)
        # Presigned "object-store" keys handed out by download redirects.
        self.objects: dict[str, OutputFile] = {}

    # ---- auth -----------------------------------------------------------------------------
    def token_of(self, request: Request) -> str | None:
        token = request.headers.get("x-auth-token")
        if token is None and self.flavour == "cg2":
            token = request.query_params.get("token")
        return token

    def user_for_token(self, token: str | None) -> User | None:
        """The user owning a valid, unexpired token (the `expired_tokens` knob expires all)."""
        if not token or self.faults.current.expired_tokens:
            return None
        user = next((u for u in self.options.users if u.token == token), None)
        return user if user and user.expires_at > time.time() else None

    def user(self, request: Request) -> User | None:
        return self.user_for_token(self.token_of(request))

    def require_user(self, request: Request) -> User:
        """CG3 secures `/api/**` with a bare 401; CG2 answers with its JSON message."""
        user = self.user(request)
        if user is None:
            raise CloudgeneError(
                401, None if self.flavour == "cg3" else "The request requires user authentication."
            )
        return user

    def check_maintenance(self, user: User | None) -> None:
        if self.options.maintenance and not (user and user.admin):
            raise CloudgeneError(503, "This functionality is currently under maintenance.")

    # ---- jobs -----------------------------------------------------------------------------
    def job_for(self, request: Request, job_id: str) -> tuple[Job, User | None]:
        """Find a job the caller may see: 404 when unknown, 403 when another user's."""
        user = self.require_user(request) if self.flavour == "cg3" else self.user(request)
        self.check_maintenance(user)
        job = self.engine.jobs.get(job_id)
        if job is None:
            raise CloudgeneError(404, f"Job {job_id} not found.")
        if user is None or (not user.admin and user.username != job.user.username):
            raise CloudgeneError(403, "Access denied.")
        return job, user

    def resolve_panel(self, value: str) -> Panel | None:
        """`apps@<id>[@<version>]` or `<id>[@<version>]`; a bare id means the newest version."""
        ref = value.removeprefix("apps@")
        panel_id, _, version = ref.partition("@")
        matches = [
            p
            for p in self.options.panels
            if p.id == panel_id and (not version or p.version == version)
        ]
        return max(matches, key=lambda p: p.version) if matches else None

    def new_job(self, user: User, app_id: str, form: ParsedForm, user_agent: str) -> Job:
        values = form.values
        job_id = self.engine.new_id()
        ref = values.get("refpanel", "")
        panel = self.resolve_panel(ref)
        password = values.get("password", "")
        generated = not password or (self.flavour == "cg2" and password == "auto")
        if generated:
            password = generate_password()
        mode = values.get("mode", "imputation")
        job = Job(
            id=job_id,
            name=form.job_name.strip() if form.job_name and form.job_name.strip() else job_id,
            user=user,
            app_id=app_id,
            app_label=f"{self.options.app_name} {self.options.resolved_app_version()}",
            user_agent=user_agent,
            spec=None,
            generated_password=generated,
        )
        if panel is None:
            job.setup_error = (
                f"Application {ref.removeprefix('apps@')} is not installed or wrong permissions."
            )
            return job
        params = JobParams(
            build=values.get("build", "hg19"),
            phasing=values.get("phasing", "eagle"),
            population=values.get("population", "") or "off",
            mode=mode,
            r2_filter=values.get("r2Filter", "0"),
            panel_id=panel.key,
            panel_build=panel.build,
            panel_populations=tuple(p.id for p in panel.populations),
            allowed_phasing=("eagle", "beagle", "no_phasing")
            if self.flavour == "cg3"
            else ("eagle", "no_phasing"),
        )
        job.spec = WorkflowSpec(
            uploads=tuple(form.uploads),
            params=params,
            limits=ValidationLimits(
                min_samples=self.options.min_samples,
                max_samples=self.options.max_samples,
                contact_name=self.options.contact_name,
                contact_email=self.options.contact_email,
            ),
            qc=QcSettings(min_snps=panel.min_snps),
            password=password,
            aes=values.get("aesEncryption") == "true",
            impute=mode == "imputation",
            r2_filter=parse_r2(params.r2_filter),
        )
        return job

    # ---- downloads ------------------------------------------------------------------------
    def download(
        self, found: tuple[Job, OutputFile] | None, filename: str, request: Request
    ) -> Response:
        """Serve one result file, spending one of its downloads (CG3 `DownloadService`); with an
        S3 workspace the answer is a 302 to a presigned object-store URL instead."""
        if found is None or (self.flavour == "cg2" and found[1].name != filename):
            raise CloudgeneError(404, "download not found.")
        _, output = found
        if output.count == 0:
            raise CloudgeneError(400, "number of max downloads exceeded.")
        if output.count != -1:
            output.count -= 1
        if output.data is None:
            raise CloudgeneError(
                404,
                "File not found in workspace." if self.flavour == "cg3" else "download not found.",
            )
        if self.options.redirects_downloads():
            key = secrets.token_urlsafe(24)
            self.objects[key] = output
            base = str(request.base_url).rstrip("/")
            location = f"{base}{OBJECT_STORE}/{key}/{output.name}?X-Amz-Expires=300"
            return RedirectResponse(location, status_code=302)
        return self.file_response(output)

    @staticmethod
    def file_response(output: OutputFile) -> Response:
        suffix = "." + output.name.rsplit(".", 1)[-1]
        return Response(output.data, media_type=_MEDIA.get(suffix, "application/octet-stream"))

    def script(self, job: Job, host: str) -> str:
        """The `/get/...` bash script: one `curl -L` per file (CG3 `DownloadController`)."""
        lines = ["#!/bin/bash", "set -e", "GREEN='\x1b[0;32m'", "NC='\x1b[0m'"]
        total = len(job.outputs)
        for index, output in enumerate(job.outputs, start=1):
            lines += [
                'echo ""',
                f'echo "Downloading file {output.name} ({index}/{total})..."',
                f"curl -L {host}/share/results/{output.hash}/{output.name} -o {output.name} --create-dirs ",
            ]
        lines += [
            'echo ""',
            f'echo -e "${{GREEN}}All {total} file(s) downloaded.${{NC}}"',
            'echo ""',
            'echo ""',
        ]
        return "\n".join(lines) + "\n"

    def listed_app_id(self, bare: str) -> str:
        """Cloudgene 3 lists apps as ``id@version`` (``Application.getId()``); CG2 bare."""
        version = self.options.resolved_app_version()
        return f"{bare}@{version}" if self.flavour == "cg3" else bare

    def server_json(self, user: User | None) -> dict[str, Any]:
        apps = [
            {
                "id": self.listed_app_id(a),
                "name": self.options.app_name,
                "version": self.options.resolved_app_version(),
            }
            for a in self.options.resolved_app_ids()
        ]
        body: dict[str, Any] = {
            "name": self.options.name,
            "background": "#343a40",
            "foreground": "#ffffff",
            "footer": "",
            "emailRequired": True,
            "userEmailDescription": "",
            "userWithoutEmailDescription": "",
            "oauth": [],
        }
        if user:
            body["user"] = {
                "username": user.username,
                "mail": user.email,
                "admin": user.admin,
                "name": user.full_name,
            }
            body |= {"apps": apps, "deprecatedApps": [], "experimentalApps": [], "loggedIn": True}
        else:
            # Cloudgene 3 filters apps by the caller's permissions: anonymous callers see none.
            body |= {"apps": apps if self.options.anonymous_apps else [], "loggedIn": False}
        return body | {"navigation": [], "maintenace": self.options.maintenance}

    def counters(self) -> dict[str, Any]:
        jobs = list(self.engine.jobs.values())
        complete: dict[str, int] = {}
        for job in jobs:
            if job.state == SUCCESS:
                for key, value in job.counters.items():
                    complete[key] = complete.get(key, 0) + value
        waiting = sum(1 for j in jobs if j.state == 1)
        running = sum(1 for j in jobs if j.state in (2, 3))
        body: dict[str, Any] = {"complete": complete}
        if self.flavour == "cg2":
            body |= {"running": {"runs": running}, "waiting": {"runs": waiting}}
        return body | {"users": len(self.options.users), "queue": {"size": waiting + running}}

    def verify(self, token: str) -> dict[str, Any]:
        """`POST /api/v2/tokens/verify`, with each flavour's wording."""
        known = next((u for u in self.options.users if u.token == token), None)
        expired = known is not None and (
            self.faults.current.expired_tokens or known.expires_at <= time.time()
        )
        if self.flavour == "cg3":
            if known is None or expired:
                return {
                    "valid": False,
                    "message": "Invalid API Token.",
                    "expire": int(time.time() * 1000),
                }
            # CG3 passes its "%s" template unformatted (AuthenticationService.validateApiToken).
            return {
                "valid": True,
                "message": "API Token was created by %s and is valid.",
                "username": known.username,
                "name": known.full_name,
                "mail": known.email,
                "expire": int(known.expires_at * 1000),
            }
        if not token:
            return {"valid": False, "message": "No token provided"}
        if known is None:
            return {"valid": False, "message": "API Token is not valid."}
        expire = time.time() - 1 if expired else known.expires_at
        payload = {
            "username": known.username,
            "name": known.full_name,
            "mail": known.email,
            "api": True,
            "expire": int(expire * 1000),
        }
        if expired:
            return payload | {
                "valid": False,
                "message": f"API Token was created by {known.username} and expired on {java_date(expire)}.",
            }
        return payload | {
            "valid": True,
            "message": f"API Token was created by {known.username} and is valid until {java_date(expire)}.",
        }


def _routes(cg: Cloudgene) -> APIRouter:
    router = APIRouter()
    flavour = cg.flavour

    @router.get("/api/v2/server")
    async def server(request: Request) -> dict[str, Any]:
        return cg.server_json(cg.user(request))

    @router.get("/api/v2/server/counters")
    async def counters() -> dict[str, Any]:
        return cg.counters()

    @router.get("/api/v2/server/apps/{app_id}")
    async def app(request: Request, app_id: str) -> dict[str, Any]:
        user = cg.user(request)
        if flavour == "cg3" and user is None and not cg.options.anonymous_apps:
            # Recent Cloudgene 3 releases check the app's permissions: anonymous is a bare 401.
            raise CloudgeneError(401, None)
        bare = cg.options.resolve_app(app_id)
        if bare is None:
            raise CloudgeneError(
                404,
                f"Application {app_id} not found or the request requires user authentication."
                if flavour == "cg3"
                else f"Application '{app_id}' not found.",
            )
        return app_form(cg.options, cg.listed_app_id(bare))

    @router.post("/api/v2/tokens/verify")
    async def verify(token: Annotated[str, Form()] = "") -> dict[str, Any]:
        return cg.verify(token)

    @router.post("/api/v2/jobs/submit/{app_id}")
    async def submit(request: Request, app_id: str) -> dict[str, Any]:
        not_found = (
            f"Application '{app_id}' not found."
            if flavour == "cg3"
            else (f"Application '{app_id}' not found or the request requires user authentication.")
        )
        user = cg.require_user(request) if flavour == "cg3" else cg.user(request)
        cg.check_maintenance(user)
        if user is None:
            raise CloudgeneError(404, not_found)
        limit = cg.options.max_running_jobs_per_user
        too_many = not user.admin and cg.engine.active_jobs(user) >= limit
        if flavour == "cg3" and too_many:
            raise CloudgeneError(400, f"Only {limit} jobs per user can be executed simultaneously.")
        bare = cg.options.resolve_app(app_id)
        if bare is None:
            raise CloudgeneError(404, not_found)
        if too_many:
            raise CloudgeneError(400, f"Only {limit} jobs per user can be executed simultaneously.")
        try:
            async with request.form() as raw_form:
                form = await parse_form(raw_form, app_inputs(flavour), flavour)
        except SubmitError as problem:
            raise CloudgeneError(400, problem.message) from None
        job = cg.new_job(user, bare, form, request.headers.get("user-agent", ""))
        cg.engine.submit(job)
        return {"success": True, "message": SUBMITTED, "id": job.id}

    @router.get("/api/v2/jobs")
    async def list_jobs(request: Request) -> dict[str, Any]:
        user = cg.require_user(request)
        cg.check_maintenance(user)
        jobs = [
            j
            for j in reversed(cg.engine.jobs.values())
            if j.user.username == user.username and j.state != DELETED
        ]
        raw_page = request.query_params.get("page")
        if raw_page is None:
            page, size, shown = 1, len(jobs), jobs
        else:
            page = max(1, int(raw_page)) if raw_page.lstrip("-").isdigit() else 1
            size = PAGE_SIZE
            shown = jobs[(page - 1) * size : page * size]
        data = [job_json(j, cg.engine, user, flavour, listing=True) for j in shown]
        return page_json(data, len(jobs), page, size, flavour)

    @router.get("/api/v2/jobs/{job_id}/status")
    async def status(request: Request, job_id: str) -> dict[str, Any]:
        job, user = cg.job_for(request, job_id)
        return job_json(job, cg.engine, user, flavour)

    @router.get("/api/v2/jobs/{job_id}")
    async def detail(request: Request, job_id: str) -> dict[str, Any]:
        job, user = cg.job_for(request, job_id)
        return job_json(job, cg.engine, user, flavour)

    @router.get("/api/v2/jobs/{job_id}/cancel")
    async def cancel(request: Request, job_id: str) -> dict[str, Any]:
        job, user = cg.job_for(request, job_id)
        cg.engine.cancel(job)
        return job_json(job, cg.engine, user, flavour)

    @router.get("/api/v2/jobs/{job_id}/restart")
    async def restart(request: Request, job_id: str) -> dict[str, Any]:
        job, _ = cg.job_for(request, job_id)
        if job.state != DEAD:
            raise CloudgeneError(400, f"Job {job_id} is not pending.")
        cg.engine.restart(job)
        if flavour == "cg3":
            return {"success": True, "message": SUBMITTED, "type": 0, "time": 0}
        return {"success": True, "message": SUBMITTED, "id": job.id}

    @router.delete("/api/v2/jobs/{job_id}")
    async def delete(request: Request, job_id: str) -> dict[str, Any]:
        if flavour == "cg3":
            # CG3 deletes only for session logins (AuthenticationType.ACCESS_TOKEN); an API
            # token is an AuthorizationException: a bare 403.
            cg.require_user(request)
            raise CloudgeneError(403, None)
        job, user = cg.job_for(request, job_id)
        cg.engine.delete(job)
        return job_json(job, cg.engine, user, flavour)

    share_path = (
        "/share/results/{file_hash}/{filename:path}"
        if flavour == "cg3"
        else "/share/{username}/{file_hash}/{filename:path}"
    )

    @router.get(share_path)
    async def share(request: Request, file_hash: str, filename: str) -> Response:
        return cg.download(cg.engine.find_by_file_hash(file_hash), filename, request)

    @router.get("/downloads/{job_id}/{file_hash}/{filename:path}")
    async def download(request: Request, job_id: str, file_hash: str, filename: str) -> Response:
        job = cg.engine.jobs.get(job_id)
        if job is None:
            raise CloudgeneError(404, f"Job {job_id} not found.")
        output = job.find_output(file_hash)
        return cg.download((job, output) if output else None, filename, request)

    @router.get(OBJECT_STORE + "/{key}/{filename}")
    async def stored_object(key: str, filename: str) -> Response:
        output = cg.objects.get(key)
        if output is None or output.data is None or output.name != filename:
            return Response(
                b"<Error><Code>NoSuchKey</Code></Error>", 404, media_type="application/xml"
            )
        return cg.file_response(output)

    script_path = "/get/{param_hash}" if flavour == "cg3" else "/get/{job_id}/{param_hash}"

    @router.get(script_path)
    async def script(request: Request, param_hash: str) -> PlainTextResponse:
        job = cg.engine.find_by_param_hash(param_hash)
        if job is None:
            raise CloudgeneError(404, f"Param for hash {param_hash} not found.")
        return PlainTextResponse(cg.script(job, str(request.base_url).rstrip("/")))

    return router


def build_cloudgene(options: CloudgeneOptions | None = None) -> Simulator:
    """A Cloudgene simulator (not yet serving): wire state, routes, errors, faults and admin."""
    options = options or CloudgeneOptions()
    faults = FaultState(options.faults, seed=options.seed)
    cg = Cloudgene(options, faults)
    api = FastAPI(
        title=f"Cloudgene simulator ({options.flavour})",
        docs_url="/_sandbox/docs",
        openapi_url="/_sandbox/openapi.json",
    )
    api.include_router(_routes(cg))
    api.include_router(admin_router(faults))

    @api.exception_handler(CloudgeneError)
    async def cloudgene_error(_: Request, problem: CloudgeneError) -> Response:
        if problem.message is None:
            return Response(status_code=problem.status)
        return JSONResponse(
            error_body(options.flavour, problem.message), status_code=problem.status
        )

    info = {
        "users": [u.model_dump(include={"username", "token"}) for u in options.users],
        "app_ids": options.resolved_app_ids(),
    }
    return Simulator(
        kind="michigan",
        flavour=options.flavour,
        app=FaultMiddleware(api, faults),
        faults=faults,
        shutdown=cg.engine.shutdown,
        info=info,
    )
