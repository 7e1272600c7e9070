"""Cloudgene API v2: Michigan Imputation Server, TOPMed and AfriGen-D (specs/external-protocols.md §4-6).

- Auth is `X-Auth-Token: <token>` with no "Bearer"; `POST /api/v2/tokens/verify` checks a token
  without using any job quota.
- Submit is `POST /api/v2/jobs/submit/{app}` (multipart) with the app id exactly as the registry
  stores it (`imputationserver2`, `imputationserver2@2.0.12`, `minimac4`), each VCF a repeated
  `files` part streamed from file-manager, only fields the app declares (anything else is a 400
  `Parameter 'x' not found.`), our own result password, and `job-name` carrying the job's tag so
  a submission whose answer was lost can be found again in `GET /api/v2/jobs`.
- Numeric states map as §4.4 says; the failure text is the last error message (`type` 1 or 4)
  of the steps, which is where Cloudgene puts validation and QC rejections.
- Cancel is a GET. Results are `outputParams[].files[]`, downloaded anonymously from
  `/downloads/{job}/{hash}/{name}` (the hash is the secret) following redirects to object
  storage; the token is never sent there, since a redirect may leave the Cloudgene host.
- Result zips are encrypted with our password (ZipCrypto, or AES when the server is set up so):
  `download` stores the zip in a temporary file, checks and decrypts it, and streams a plain zip
  of the same entries, so what reaches file-manager opens without a password.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx

from job_processor.adapters._archive import fetch_result
from job_processor.adapters._http import (
    clean_text,
    error_message,
    expect_object,
    parse_json,
    raise_for_status,
    send,
)
from job_processor.adapters._streams import FilePart, Multipart, TextPart
from job_processor.adapters.base import (
    AuthFailed,
    ByteStream,
    CheckResult,
    Credentials,
    JobSpec,
    NotSubmittable,
    RemoteNotFound,
    RemoteRejected,
    RemoteResult,
    RemoteState,
    RemoteStatus,
    RemoteUnavailable,
    ServiceTarget,
    Submission,
)

__all__ = ["STATE_MAP", "MichiganAdapter"]

# Cloudgene `AbstractJob` codes (spec §4.4) -> our remote states.
STATE_MAP: dict[int, RemoteState] = {
    -1: "failed",  # DEAD: lost by the server (SYSTEM_ERROR)
    1: "queued",
    2: "running",
    3: "running",  # exporting / compressing results
    4: "completed",
    5: "failed",  # includes validation and QC rejections
    6: "cancelled",
    7: "completed",  # retired: results deleted after the retention period
    8: "completed",  # success + "will be retired" email sent
    9: "failed",
    10: "cancelled",  # deleted by the user
}
_ERROR_TYPES = (1, 4)  # Message.ERROR, Message.ERROR_ANSI
_RUNNING_TYPE = 3
_TOO_MANY = re.compile(r"Only \d+ jobs? per user can be executed simultaneously", re.I)
_MAX_LIST_PAGES = 20  # 15 jobs a page: the 300 newest jobs are searched when reconciling
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")
_PASSWORD_SAFE = re.compile(r"[!#-%(-;=?-~]{8,200}")  # printable ASCII except space "&'<>


def api_root(target: ServiceTarget) -> str:
    """`https://host/api/v2` from the registered base URL (or api_url when the registry has one)."""
    root = (target.api_url or target.base_url).rstrip("/")
    return root if root.endswith("/api/v2") else f"{root}/api/v2"


def host_root(target: ServiceTarget) -> str:
    return api_root(target).removesuffix("/api/v2")


def _r2(value: float | None) -> str | None:
    """`r2Filter` as Cloudgene lists it (`0`, `0.001`, `0.3`): no trailing zeros."""
    return None if value is None else f"{value:g}"


def _upload_names(spec: JobSpec) -> list[str]:
    """Part file names: MIS2 reads only `*.vcf.gz`, and two parts must not share a name."""
    names: list[str] = []
    for index, item in enumerate(spec.inputs, start=1):
        stem = item.filename.replace("\\", "/").rsplit("/", 1)[-1]
        for suffix in (".vcf.gz", ".vcf.bgz", ".gz", ".vcf"):
            if stem.lower().endswith(suffix):
                stem = stem[: -len(suffix)]
                break
        stem = _SAFE_NAME.sub("_", stem).strip("._") or f"input{index}"
        name = f"{stem}.vcf.gz"
        if name in names:
            name = f"{stem}_{index}.vcf.gz"
        names.append(name)
    return names


def _state_code(job: dict[str, Any]) -> int:
    state = job.get("state")
    if isinstance(state, bool) or not isinstance(state, int | str):
        raise RemoteUnavailable("job status: the answer has no numeric state")
    try:
        return int(state)
    except ValueError:
        raise RemoteUnavailable(f"job status: unreadable state {state!r}") from None


def _messages(job: dict[str, Any]) -> list[tuple[str, int, str]]:
    """(step name, message type, text) of every step message, in order."""
    found = []
    steps = job.get("steps")
    for step in steps if isinstance(steps, list) else []:
        if not isinstance(step, dict):
            continue
        name = str(step.get("name") or "")
        messages = step.get("logMessages")
        for message in messages if isinstance(messages, list) else []:
            if isinstance(message, dict) and isinstance(message.get("message"), str):
                kind = message.get("type")
                found.append((name, kind if isinstance(kind, int) else 0, message["message"]))
    return found


def _step_lines(job: dict[str, Any]) -> list[str]:
    """One line per step: its name and the first line of its latest message."""
    latest: dict[str, str] = {}
    for name, _, text in _messages(job):
        first = clean_text(text).split("\n", 1)[0]
        latest[name] = f"{name}: {first}" if first else name
    return list(latest.values())[:50]


def _failure_text(job: dict[str, Any], code: int) -> str:
    errors = [clean_text(text) for _, kind, text in _messages(job) if kind in _ERROR_TYPES]
    if errors:
        return errors[-1]
    if code == -1:
        return "The job died on the imputation server (state -1); it can only be restarted there."
    return "The imputation server reports the job failed without giving a reason."


def _progress(job: dict[str, Any], code: int) -> float | None:
    """Cloudgene 2 sends a percentage; Cloudgene 3 none, so steps finished give an estimate."""
    raw = job.get("progress")
    if isinstance(raw, int | float) and not isinstance(raw, bool) and 0 <= raw <= 100:
        return float(raw) / 100
    if code == 1:
        return 0.0
    if code == 3:
        return 0.95
    if code in (4, 7, 8):
        return 1.0
    if code == 2:
        messages = _messages(job)
        steps = {name for name, _, _ in messages}
        running = {name for name, kind, _ in messages if kind == _RUNNING_TYPE}
        return round(min(0.9, 0.2 * len(steps - running)), 2)
    return None


def job_status(job: dict[str, Any]) -> RemoteStatus:
    """A Cloudgene job JSON (CG2 or CG3) as a `RemoteStatus`."""
    code = _state_code(job)
    state: RemoteState = STATE_MAP.get(code, "unknown")
    position = job.get("positionInQueue")
    queue_position = (
        position
        if code == 1 and isinstance(position, int) and not isinstance(position, bool)
        else None
    )
    message: str | None = None
    if state == "failed":
        message = _failure_text(job, code)
    elif code == 7:
        message = "The imputation server deleted the results after its retention period."
    elif code == 10:
        message = "The job was deleted on the imputation server."
    elif state == "unknown":
        message = f"The imputation server reports an unknown state {code}."
    return RemoteStatus(
        state=state,
        remote_state=str(code),
        progress=_progress(job, code),
        queue_position=queue_position,
        message=message,
        steps=_step_lines(job),
    )


class MichiganAdapter:
    """The Cloudgene adapter on the caller's `httpx.AsyncClient`."""

    service_type = "michigan"

    def __init__(self, client: httpx.AsyncClient, *, workdir: Path | None = None) -> None:
        self.client = client
        self.workdir = workdir  # where result zips are decrypted (the system temp by default)

    # ---- helpers --------------------------------------------------------------------------
    @staticmethod
    def _auth(creds: Credentials) -> dict[str, str]:
        if not creds.token:
            raise AuthFailed("No API token is stored for this imputation server.")
        return {"X-Auth-Token": creds.token}

    async def _job_json(
        self, target: ServiceTarget, creds: Credentials, path: str, what: str
    ) -> dict[str, Any]:
        url = f"{api_root(target)}/jobs/{path}"
        response = await send(self.client, "GET", url, what, headers=self._auth(creds))
        raise_for_status(response, what)
        return expect_object(parse_json(response, what), what)

    # ---- Adapter --------------------------------------------------------------------------
    async def verify_credentials(self, target: ServiceTarget, creds: Credentials) -> CheckResult:
        """`POST /api/v2/tokens/verify` (anonymous, form `token`): `{valid, message, ...}`."""
        if not creds.token:
            return CheckResult(False, "No API token is stored for this imputation server.")
        what = "token check"
        response = await send(
            self.client,
            "POST",
            f"{api_root(target)}/tokens/verify",
            what,
            data={"token": creds.token},
        )
        raise_for_status(response, what)
        body = expect_object(parse_json(response, what), what)
        message = body.get("message")
        text = clean_text(message) if isinstance(message, str) else ""
        if body.get("valid") is True:
            # CG3 sends its "%s" template unformatted; say it plainly instead.
            user = body.get("username")
            return CheckResult(True, f"The API token is valid (user {user})." if user else text)
        return CheckResult(False, text or "The imputation server says the API token is not valid.")

    def _form(self, target: ServiceTarget, spec: JobSpec) -> list[TextPart | FilePart]:
        if not target.app_id:
            raise NotSubmittable("The service has no Cloudgene application id registered.")
        if not spec.result_password:
            raise NotSubmittable("A result password is required for Cloudgene jobs.")
        if not _PASSWORD_SAFE.fullmatch(spec.result_password):
            # Cloudgene HTML-escapes form values before use: "a&b" would encrypt with "a&amp;b".
            raise NotSubmittable("The result password must be printable ASCII without &<>\"'.")
        if not spec.inputs:
            raise NotSubmittable("The job has no input files.")
        # MIS2 (`imputationserver2*`) says `qc_only`; MIS v1 apps (`minimac4`...) `qconly`.
        v2 = target.app_id.split("@", 1)[0].startswith("imputationserver2")
        mode = "imputation" if spec.mode == "imputation" else ("qc_only" if v2 else "qconly")
        if spec.phasing == "beagle" and not v2:
            raise NotSubmittable("This Cloudgene application offers eagle or no_phasing only.")
        fields = {
            "job-name": f"{spec.name[:80]} ({spec.tag})",
            "refpanel": spec.panel,
            "build": spec.build,
            "phasing": spec.phasing,
            "mode": mode,
            "population": spec.population,
            "r2Filter": _r2(spec.r2_filter),
            "password": spec.result_password,
        }
        parts: list[TextPart | FilePart] = [
            TextPart(name, value) for name, value in fields.items() if value
        ]
        for item, name in zip(spec.inputs, _upload_names(spec), strict=True):
            parts.append(FilePart("files", name, item, "application/gzip"))
        return parts

    async def submit(self, target: ServiceTarget, creds: Credentials, spec: JobSpec) -> Submission:
        body = Multipart(self._form(target, spec))
        await self._check_token(target, creds)
        headers = self._auth(creds) | body.headers
        url = f"{api_root(target)}/jobs/submit/{target.app_id}"
        what = "submit"
        response = await send(self.client, "POST", url, what, headers=headers, content=body.body())
        if response.status_code == 400 and _TOO_MANY.search(error_message(response)):
            # Cloudgene's per-user limit of running jobs: wait for a slot, do not fail the job.
            raise RemoteUnavailable(f"{what}: {error_message(response)}", status_code=400)
        if response.status_code == 404:
            raise RemoteRejected(f"{what}: {error_message(response)}", status_code=404)
        raise_for_status(response, what)
        answer = expect_object(parse_json(response, what), what)
        remote_id = answer.get("id")
        if answer.get("success") is False or not isinstance(remote_id, str) or not remote_id:
            message = answer.get("message")
            raise RemoteRejected(
                f"{what}: {clean_text(message) if isinstance(message, str) else 'no job id'}"
            )
        return Submission(remote_id=remote_id, raw=answer)

    async def _check_token(self, target: ServiceTarget, creds: Credentials) -> None:
        """Verify the token before uploading gigabytes: an expired one (tokens last 30 days) is
        otherwise found only when the upload is cut short by a bare 401, which looks like a
        network failure. A server without the verify route is simply not asked."""
        try:
            check = await self.verify_credentials(target, creds)
        except (RemoteNotFound, RemoteRejected):
            return
        if not check.ok:
            raise AuthFailed(f"submit: {check.message}")

    async def find(
        self, target: ServiceTarget, creds: Credentials, spec: JobSpec
    ) -> Submission | None:
        """Search the caller's jobs (newest first) for one whose name carries `spec.tag`."""
        page: int | None = 1
        seen = 0
        while page is not None and seen < _MAX_LIST_PAGES:
            seen += 1
            body = await self._list_page(target, creds, page)
            jobs = body if isinstance(body, list) else body.get("data")
            for job in jobs if isinstance(jobs, list) else []:
                if isinstance(job, dict) and spec.tag in str(job.get("name", "")):
                    return Submission(remote_id=str(job["id"]), raw=job)
            following = body.get("next") if isinstance(body, dict) else None
            page = (
                following if isinstance(following, int) and following > page else None
            )  # CG2 sends `next` only when there is one; a bare list is one page
        return None

    async def _list_page(self, target: ServiceTarget, creds: Credentials, page: int) -> Any:
        what = "job list"
        response = await send(
            self.client,
            "GET",
            f"{api_root(target)}/jobs",
            what,
            headers=self._auth(creds),
            params={"page": page},
        )
        raise_for_status(response, what)
        body = parse_json(response, what)
        if not isinstance(body, dict | list):
            raise RemoteUnavailable(f"{what}: unexpected answer")
        return body

    async def status(
        self, target: ServiceTarget, creds: Credentials, remote_id: str
    ) -> RemoteStatus:
        return job_status(await self._job_json(target, creds, f"{remote_id}/status", "job status"))

    async def cancel(
        self, target: ServiceTarget, creds: Credentials, remote_id: str
    ) -> CheckResult:
        """`GET /api/v2/jobs/{id}/cancel` (a GET); only waiting or running jobs change (to 6)."""
        job = await self._job_json(target, creds, f"{remote_id}/cancel", "cancel")
        status = job_status(job)
        if status.state == "cancelled":
            return CheckResult(True, "The imputation server cancelled the job.")
        return CheckResult(
            False,
            f"The imputation server did not cancel the job (state {status.remote_state}: "
            f"{status.state}).",
        )

    async def results(
        self, target: ServiceTarget, creds: Credentials, remote_id: str
    ) -> list[RemoteResult]:
        """Every file of every downloadable output parameter (CG3 marks them `download: true`;
        CG2 lists only downloadable ones). A file without downloads left, or of a retired job,
        is listed as not downloadable with the reason."""
        job = await self._job_json(target, creds, remote_id, "job results")
        code = _state_code(job)
        found: list[RemoteResult] = []
        params = job.get("outputParams")
        for param in params if isinstance(params, list) else []:
            if not isinstance(param, dict) or param.get("download") is False:
                continue
            files = param.get("files")
            for item in files if isinstance(files, list) else []:
                result = self._result(target, remote_id, item, code)
                if result is not None:
                    found.append(result)
        return found

    def _result(
        self, target: ServiceTarget, remote_id: str, item: Any, code: int
    ) -> RemoteResult | None:
        if not isinstance(item, dict):
            return None
        name, file_hash = item.get("name"), item.get("hash")
        if not isinstance(name, str) or not isinstance(file_hash, str) or not name or not file_hash:
            return None
        count = item.get("count")
        note = None
        if code == 7:
            note = "deleted by the imputation server after its retention period"
        elif isinstance(count, int) and not isinstance(count, bool) and count == 0:
            note = "no downloads left on the imputation server (its limit per file)"
        url = f"{host_root(target)}/downloads/{remote_id}/{file_hash}/{name}"
        return RemoteResult(
            name=name.rsplit("/", 1)[-1],
            url=url,
            size=None,  # Cloudgene gives only a rounded display size ("1 GB")
            downloadable=note is None,
            note=note,
            extra={"hash": file_hash, "size_text": item.get("size"), "path": name},
        )

    def download(
        self,
        target: ServiceTarget,
        creds: Credentials,
        result: RemoteResult,
        *,
        password: str | None = None,
    ) -> ByteStream:
        """Stream one result; a `.zip` is decrypted with `password` (the job's result password)
        and streamed as a plain zip. No credential is sent: the link is anonymous."""
        return self._download(result, password)

    @asynccontextmanager
    async def _download(
        self, result: RemoteResult, password: str | None
    ) -> AsyncIterator[AsyncIterator[bytes]]:
        if not result.url or not result.downloadable:
            raise RemoteNotFound(f"download {result.name}: {result.note or 'not downloadable'}")
        async with fetch_result(
            self.client, result.url, result.name, password=password, workdir=self.workdir
        ) as chunks:
            yield chunks
