"""GA4GH WES 1.0/1.1 (specs/external-protocols.md §2-3): the spec, the Starter Kit nodes (ILIFU,
eLwazi), sapporo (the FedImpute imputation node) and DNAstack's cromwell-wes-service.

A run is built from the service's **workflow profile** (registry, docs/service-registry.md): the
workflow URL, type, version and engine exactly as the node lists them, and for each workflow
input a constant or a job field with its encoding. Inputs go as signed file-manager links the
node fetches (`InputFile.url`) or, when the profile says `attachment`, as `workflow_attachment`
parts streamed from file-manager. The job's tag goes into the run's `tags` so a lost submission
is found again in `GET /runs`.

Remote differences handled here, each by reading what the node sends rather than by a flag:
`next_page_token` `""`, `null` or absent (the Starter Kit does not page at all; wes-service lists
under `workflows`); errors `{msg, status_code}`, `{msg, error_code}`, problem+json or Spring's
default JSON; outputs as an object, a list of `{file_name, file_url}` (sapporo) or `file://` paths
on the node (Starter Kit, wes-service: reported as staying on the node, not as a failure); the
Starter Kit's 409 for any refused submit and its cancel that answers 200 and does nothing
(`ok=False` with a note: the job keeps being polled).
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlparse

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

__all__ = ["STATE_MAP", "WesAdapter", "build_params", "run_status"]

WES_PREFIX = "/ga4gh/wes/v1"
TAG_KEY = "fedimpute_job"  # run tag holding JobSpec.tag (reconciliation)

# WES 1.0/1.1 states, plus DNAstack Workbench's (spec §2.4, §3.3, §9.2).
STATE_MAP: dict[str, RemoteState] = {
    "UNKNOWN": "unknown",
    "QUEUED": "queued",
    "INITIALIZING": "queued",
    "PREPROCESSING": "queued",
    "RUNNING": "running",
    "CANCELING": "running",  # not terminal: the node is still stopping it
    "PAUSED": "paused",
    "COMPLETE": "completed",
    "EXECUTOR_ERROR": "failed",
    "SYSTEM_ERROR": "failed",
    "PREEMPTED": "failed",
    "COMPLETE_WITH_ERRORS": "failed",
    "PREPROCESSING_ERROR": "failed",
    "CANCELED": "cancelled",
    "NOT_PROCESSED": "cancelled",
}
_STATE_NOTES = {
    "PAUSED": "The node has paused the run.",
    "UNKNOWN": "The node does not know the run's state at the moment.",
    "CANCELING": "The node is cancelling the run.",
    "PREEMPTED": "The node preempted the run (its resources were reclaimed); retry the job.",
    "SYSTEM_ERROR": "The node failed to run the workflow (a system error, not your data).",
    "PREPROCESSING_ERROR": "The service could not prepare the run (its inputs could not be read).",
    "COMPLETE_WITH_ERRORS": "The run finished with errors in some of its tasks.",
    "NOT_PROCESSED": "The service did not process the run.",
}
_CANCELLING = frozenset({"CANCELING", "CANCELED", "NOT_PROCESSED"})
_CANCEL_READBACKS = 5
_CANCEL_READBACK_SECONDS = 0.2
_MAX_PAGES = 20
_PAGE_SIZE = 100
_MAX_RUN_LOGS = 50  # runs whose RunLog is read to find a tag when the listing has no tags
_ERROR_LINE = re.compile(r"^\s*(?:ERROR|Error|error)\b[:\s].*$", re.M)
_SAFE_PREFIX = re.compile(r"[^A-Za-z0-9_-]+")


# ---------------------------------------------------------------------------------- profile
def _value_for(field: str, spec: JobSpec) -> Any:
    """The job's value for a profile's `from` field (None: not set, the input is left out)."""
    if field == "panel_id":
        return spec.panel
    if field == "panel_location":
        if not spec.panel_location:
            raise NotSubmittable("The panel has no location on this node (sync the service).")
        return spec.panel_location
    if field == "output_prefix":
        return _SAFE_PREFIX.sub("_", spec.name).strip("_")[:40] or "imputed"
    if field == "password":
        return spec.result_password
    values = {
        "build": spec.build,
        "population": spec.population,
        "phasing": spec.phasing,
        "r2_filter": spec.r2_filter,
        "mode": spec.mode,
    }
    if field not in values:
        raise NotSubmittable(f"The workflow profile uses an unknown job field {field!r}.")
    return values[field]


def _scalar(name: str, value: Any, encoding: str, table: Any) -> Any:
    if isinstance(table, dict):
        key = str(value)
        if key not in table:
            raise NotSubmittable(
                f"This workflow does not support {name} {key!r} (it takes {', '.join(map(str, table))})."
            )
        value = table[key]
    try:
        if encoding == "number":
            return float(value)
        if encoding == "integer":
            return int(value)
    except (TypeError, ValueError):
        raise NotSubmittable(f"{name}: {value!r} is not a {encoding}") from None
    if encoding == "boolean":
        return value if isinstance(value, bool) else str(value).lower() in ("true", "1", "yes")
    if encoding == "cwl_directory":
        return {"class": "Directory", "location": str(value)}
    return str(value)


def _files(refs: list[str], encoding: str) -> Any:
    if encoding in ("url", "cwl_file") and len(refs) != 1:
        raise NotSubmittable(f"This workflow takes one input file, not {len(refs)}.")
    if encoding == "url":
        return refs[0]
    if encoding == "url_list":
        return refs
    if encoding == "url_string":
        return " ".join(refs)
    if encoding == "cwl_file":
        return {"class": "File", "location": refs[0]}
    if encoding == "cwl_file_array":
        return [{"class": "File", "location": ref} for ref in refs]
    raise NotSubmittable(f"The workflow profile encodes input files as {encoding!r}, unknown here.")


def attachment_names(spec: JobSpec) -> list[str]:
    """Attachment file names: base names, made unique, never containing `..` or a slash."""
    names: list[str] = []
    for index, item in enumerate(spec.inputs, start=1):
        base = re.sub(r"[^A-Za-z0-9._-]+", "_", item.filename.rsplit("/", 1)[-1]).lstrip(".")
        base = base.replace("..", "_") or f"input{index}.vcf.gz"
        name = base if base not in names else f"{index}_{base}"
        names.append(name)
    return names


def _input_refs(spec: JobSpec, delivery: str) -> list[str]:
    if delivery == "attachment":
        return attachment_names(spec)
    refs = []
    for item in spec.inputs:
        if not item.url:
            raise NotSubmittable(f"Input {item.filename} has no link the node can fetch.")
        refs.append(item.url)
    return refs


def build_params(profile: dict[str, Any], spec: JobSpec) -> dict[str, Any]:
    """`workflow_params` from the profile's `params` and the job (docs/service-registry.md)."""
    params = profile.get("params")
    if not isinstance(params, dict):
        raise NotSubmittable("The workflow profile has no params.")
    uses = {p.get("from") for p in params.values() if isinstance(p, dict)}
    if spec.mode == "qc_only" and "mode" not in uses:
        raise NotSubmittable("This node's workflow always imputes: it has no QC-only mode.")
    delivery = str(profile.get("input_delivery") or "url")
    built: dict[str, Any] = {}
    for name, param in params.items():
        if not isinstance(param, dict):
            raise NotSubmittable(f"The workflow profile's param {name!r} is malformed.")
        if "value" in param:
            built[name] = param["value"]
            continue
        field, encoding = str(param.get("from")), str(param.get("as") or "string")
        if field == "input_files":
            built[name] = _files(_input_refs(spec, delivery), encoding)
            continue
        value = _value_for(field, spec)
        if value is not None:
            built[name] = _scalar(name, value, encoding, param.get("values"))
    return built


# ---------------------------------------------------------------------------------- run logs
def _strings(value: Any) -> list[str]:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def _is_url(text: str) -> bool:
    return urlparse(text).scheme in ("http", "https", "file")


def _failure_text(body: dict[str, Any], state: str) -> str:
    """The run's own words: Workbench `errors`, 1.1 `system_logs`, `ERROR:` lines of an inline
    stderr (sapporo carries the text itself; other nodes a URL), else the state's meaning."""
    raw_log, tasks = body.get("run_log"), body.get("task_logs")
    log: dict[str, Any] = raw_log if isinstance(raw_log, dict) else {}
    found = _strings(body.get("errors")) + _strings(log.get("system_logs"))
    for task in tasks if isinstance(tasks, list) else []:
        if isinstance(task, dict):
            found += _strings(task.get("system_logs"))
    stderr = log.get("stderr")
    if not found and isinstance(stderr, str) and stderr and not _is_url(stderr.strip()):
        found = _ERROR_LINE.findall(stderr[-20000:])
    if found:
        return clean_text(found[-1])
    note = _STATE_NOTES.get(state, f"The run ended in state {state}.")
    code = log.get("exit_code")
    if isinstance(code, int) and not isinstance(code, bool) and code != 0:
        note += f" (exit code {code})"
    return note


def _step_lines(body: dict[str, Any]) -> list[str]:
    lines = []
    tasks = body.get("task_logs")
    for task in tasks if isinstance(tasks, list) else []:
        if not isinstance(task, dict):
            continue
        name = str(task.get("name") or task.get("id") or task.get("task_id") or "task")
        code = task.get("exit_code")
        state = task.get("state")
        if isinstance(state, str):
            lines.append(f"{name}: {state.lower()}")
        elif isinstance(code, int) and not isinstance(code, bool):
            lines.append(f"{name}: {'done' if code == 0 else f'failed (exit code {code})'}")
        else:
            lines.append(f"{name}: running")
    return lines[:100]


def run_status(body: dict[str, Any]) -> RemoteStatus:
    """A RunLog (or RunStatus) as a `RemoteStatus`; unknown states are `unknown`, never a crash."""
    raw = body.get("state")
    state_text = raw if isinstance(raw, str) and raw else "UNKNOWN"
    state: RemoteState = STATE_MAP.get(state_text.upper(), "unknown")
    message: str | None
    if state == "failed":
        message = _failure_text(body, state_text.upper())
    elif state_text.upper() in STATE_MAP:
        message = _STATE_NOTES.get(state_text.upper())
    else:
        message = (
            f"The node reports a state FedImpute does not know: {clean_text(state_text, 100)}."
        )
    return RemoteStatus(
        state=state,
        remote_state=state_text[:100],
        progress=1.0 if state == "completed" else None,
        queue_position=None,
        message=message,
        steps=_step_lines(body),
    )


# ---------------------------------------------------------------------------------- outputs
def _cwl_files(value: Any) -> Iterator[tuple[str | None, str, int | None]]:
    """(name, location, size) of CWL File objects in a cwltool output object (with their
    secondary files), or of plain URL strings."""
    if isinstance(value, str):
        yield None, value, None
    elif isinstance(value, list):
        for item in value:
            yield from _cwl_files(item)
    elif isinstance(value, dict):
        location = value.get("location") or value.get("path")
        if value.get("class") == "File" and isinstance(location, str):
            size = value.get("size")
            basename = value.get("basename")
            yield (
                basename if isinstance(basename, str) else None,
                location,
                size if isinstance(size, int) and not isinstance(size, bool) else None,
            )
            yield from _cwl_files(value.get("secondaryFiles"))
        elif value.get("class") == "Directory":
            yield from _cwl_files(value.get("listing"))


def output_entries(outputs: Any) -> list[tuple[str, str, int | None]]:
    """Every output file as (name, url, size), from any of the shapes nodes send."""
    entries: list[tuple[str, str, int | None]] = []
    if isinstance(outputs, list):  # sapporo: [{file_name, file_url}]
        for item in outputs:
            if isinstance(item, dict) and isinstance(item.get("file_url"), str):
                name = item.get("file_name")
                entries.append((str(name) if name else "", item["file_url"], None))
    elif isinstance(outputs, dict):  # {name: url} or a cwltool output object
        for key, value in outputs.items():
            for name, location, size in _cwl_files(value):
                entries.append((name or str(key), location, size))
    return entries


# ---------------------------------------------------------------------------------- adapter
class WesAdapter:
    """Plain WES on the caller's `httpx.AsyncClient`. Subclasses change the API root, the auth
    header and the submit body (DNAstack)."""

    service_type = "ga4gh_wes"

    def __init__(self, client: httpx.AsyncClient, *, workdir: Path | None = None) -> None:
        self.client = client
        self.workdir = workdir

    # ---- hooks ----------------------------------------------------------------------------
    def api_root(self, target: ServiceTarget) -> str:
        """The registry's `api_url` (where the API answered its probe: sapporo may serve at its
        root) as it is; else the spec's `/ga4gh/wes/v1` under the base URL."""
        if target.api_url:
            return target.api_url.rstrip("/")
        root = target.base_url.rstrip("/")
        return root if root.endswith(WES_PREFIX) else root + WES_PREFIX

    async def auth_headers(self, target: ServiceTarget, creds: Credentials) -> dict[str, str]:
        """`Authorization: Bearer` when the user stored a token; most nodes need none."""
        return {"Authorization": f"Bearer {creds.token}"} if creds.token else {}

    def forget_auth(self, target: ServiceTarget, creds: Credentials) -> bool:
        """Drop a cached token after a 401; True when there was one (then a retry may help)."""
        return False

    async def request(
        self,
        target: ServiceTarget,
        creds: Credentials,
        method: str,
        path: str,
        what: str,
        **kwargs: Any,
    ) -> httpx.Response:
        """One API call with auth. A 401 drops a cached token; the call is repeated once with a
        fresh one unless its body was a stream (a submit is then retried by the worker)."""
        extra: dict[str, str] = kwargs.pop("headers", None) or {}
        repeatable = isinstance(kwargs.get("content"), bytes | None)
        url = self.api_root(target) + path
        for attempt in (1, 2):
            headers = await self.auth_headers(target, creds) | extra
            response = await send(self.client, method, url, what, headers=headers, **kwargs)
            forgotten = response.status_code == 401 and self.forget_auth(target, creds)
            if forgotten and repeatable and attempt == 1:
                continue
            return response
        raise AssertionError("unreachable")  # pragma: no cover

    async def json(
        self,
        target: ServiceTarget,
        creds: Credentials,
        method: str,
        path: str,
        what: str,
        **kw: Any,
    ) -> dict[str, Any]:
        response = await self.request(target, creds, method, path, what, **kw)
        raise_for_status(response, what)
        return expect_object(parse_json(response, what), what)

    # ---- Adapter --------------------------------------------------------------------------
    async def verify_credentials(self, target: ServiceTarget, creds: Credentials) -> CheckResult:
        """`GET /runs?page_size=1` needs auth where the node has any (service-info is public)."""
        try:
            await self.json(
                target, creds, "GET", "/runs", "credential check", params={"page_size": 1}
            )
        except AuthFailed as refused:
            return CheckResult(False, refused.message)
        if creds.kind == "none":
            return CheckResult(True, "The node answers without credentials.")
        return CheckResult(True, "The node accepts the credentials.")

    def profile(self, target: ServiceTarget) -> dict[str, Any]:
        profile = target.workflow_profile
        if not isinstance(profile, dict) or not profile.get("workflow_url"):
            raise NotSubmittable("The service has no workflow profile: an administrator sets one.")
        return profile

    def run_request(self, target: ServiceTarget, spec: JobSpec) -> dict[str, Any]:
        """The RunRequest fields (JSON values decoded) built from the profile and the job."""
        profile = self.profile(target)
        request: dict[str, Any] = {
            "workflow_url": str(profile["workflow_url"]),
            "workflow_type": str(profile.get("workflow_type") or ""),
            "workflow_type_version": str(profile.get("workflow_type_version") or ""),
            "workflow_params": build_params(profile, spec),
            "tags": {
                **{str(k): str(v) for k, v in (profile.get("tags") or {}).items()},
                TAG_KEY: spec.tag,
                "fedimpute_job_name": spec.name[:200],
            },
        }
        for key in ("workflow_engine", "workflow_engine_version"):
            if profile.get(key):
                request[key] = str(profile[key])
        engine_parameters = profile.get("workflow_engine_parameters")
        if isinstance(engine_parameters, dict) and engine_parameters:
            request["workflow_engine_parameters"] = {
                str(k): str(v) for k, v in engine_parameters.items()
            }
        return request

    def submit_body(self, target: ServiceTarget, spec: JobSpec) -> tuple[dict[str, str], Any]:
        """Headers and content of `POST /runs`: multipart, JSON parts typed application/json
        (DNAstack's controller needs that; the others read them as plain fields)."""
        request = self.run_request(target, spec)
        parts: list[TextPart | FilePart] = []
        for key, value in request.items():
            if isinstance(value, dict):
                parts.append(TextPart(key, json.dumps(value), "application/json"))
            else:
                parts.append(TextPart(key, value))
        if self.profile(target).get("input_delivery") == "attachment":
            for item, name in zip(spec.inputs, attachment_names(spec), strict=True):
                parts.append(FilePart("workflow_attachment", name, item))
        body = Multipart(parts)
        return body.headers, body.body()

    async def submit(self, target: ServiceTarget, creds: Credentials, spec: JobSpec) -> Submission:
        headers, content = self.submit_body(target, spec)
        what = "submit"
        response = await self.request(
            target, creds, "POST", "/runs", what, headers=headers, content=content
        )
        if response.status_code == 409:
            # The Starter Kit answers every refused submit with 409 "Could not register ...".
            raise RemoteRejected(
                f"{what}: the node refused the run ({_short(response)})", status_code=409
            )
        raise_for_status(response, what)
        answer = expect_object(parse_json(response, what), what)
        run_id = answer.get("run_id")
        if not isinstance(run_id, str) or not run_id:
            raise RemoteUnavailable(f"{what}: the node answered without a run_id")
        return Submission(remote_id=run_id, raw=answer)

    async def find(
        self, target: ServiceTarget, creds: Credentials, spec: JobSpec
    ) -> Submission | None:
        """Page through `GET /runs` for a run tagged with `spec.tag`. Listings without tags (WES
        1.0, the Starter Kit) are checked by reading each run's RunLog, newest first, bounded.
        The Starter Kit lists finished runs only: a lost submission there is found once it ends,
        so a `None` from such a node is weaker evidence than from the others."""
        untagged: list[str] = []
        token: str | None = None
        seen_tokens: set[str] = set()
        for _ in range(_MAX_PAGES):
            params: dict[str, Any] = {"page_size": _PAGE_SIZE}
            if token:
                params["page_token"] = token
            body = await self.json(target, creds, "GET", "/runs", "run list", params=params)
            runs = body.get("runs", body.get("workflows"))
            for run in runs if isinstance(runs, list) else []:
                if not isinstance(run, dict) or not isinstance(run.get("run_id"), str):
                    continue
                tags = run.get("tags")
                if isinstance(tags, dict):
                    if tags.get(TAG_KEY) == spec.tag:
                        return Submission(remote_id=run["run_id"], raw=run)
                else:
                    untagged.append(run["run_id"])
            next_token = body.get("next_page_token")
            if not isinstance(next_token, str) or not next_token or next_token in seen_tokens:
                break  # "" (spec), null (sapporo) or absent (Starter Kit): the last page
            seen_tokens.add(next_token)
            token = next_token
        for run_id in untagged[:_MAX_RUN_LOGS]:
            log = await self.json(target, creds, "GET", f"/runs/{run_id}", "run log")
            request = log.get("request")
            tags = request.get("tags") if isinstance(request, dict) else None
            if isinstance(tags, str):  # some nodes echo the tags part as it was sent
                try:
                    tags = json.loads(tags)
                except ValueError:
                    tags = None
            if isinstance(tags, dict) and tags.get(TAG_KEY) == spec.tag:
                return Submission(remote_id=run_id, raw={"run_id": run_id})
        return None

    async def run_log(
        self, target: ServiceTarget, creds: Credentials, remote_id: str
    ) -> dict[str, Any]:
        return await self.json(target, creds, "GET", f"/runs/{remote_id}", "run log")

    async def status(
        self, target: ServiceTarget, creds: Credentials, remote_id: str
    ) -> RemoteStatus:
        """From the RunLog (one call that carries the state, the tasks and the error text)."""
        return run_status(await self.run_log(target, creds, remote_id))

    async def cancel(
        self, target: ServiceTarget, creds: Credentials, remote_id: str
    ) -> CheckResult:
        """`POST /runs/{id}/cancel`, then the state is read back (a few times: sapporo cancels
        in a background task after answering). A node that answers but does not stop the run
        (the Starter Kit's empty 200, wes-service) gets ok=False and the job is kept polled."""
        what = "cancel"
        response = await self.request(target, creds, "POST", f"/runs/{remote_id}/cancel", what)
        raise_for_status(response, what)
        acknowledged = bool(response.content.strip())
        after = await self.status(target, creds, remote_id)
        for _ in range(_CANCEL_READBACKS):
            if after.terminal or after.remote_state.upper() in _CANCELLING:
                break
            await asyncio.sleep(_CANCEL_READBACK_SECONDS)
            after = await self.status(target, creds, remote_id)
        if after.remote_state.upper() in _CANCELLING:
            return CheckResult(True, f"The node is cancelling the run ({after.remote_state}).")
        if after.terminal:
            return CheckResult(False, f"The run had already ended ({after.remote_state}).")
        if not acknowledged:
            return CheckResult(
                False,
                f"The node answered the cancel but the run is still {after.remote_state}: this "
                "node does not cancel runs; FedImpute keeps following it until it ends.",
            )
        return CheckResult(
            False,
            f"The node acknowledged the cancel but the run is still {after.remote_state}; "
            "FedImpute keeps following it and may ask again.",
        )

    async def results(
        self, target: ServiceTarget, creds: Credentials, remote_id: str
    ) -> list[RemoteResult]:
        body = await self.run_log(target, creds, remote_id)
        base = self.api_root(target) + "/"
        found: list[RemoteResult] = []
        names: set[str] = set()
        for name, location, size in output_entries(body.get("outputs")):
            url = urljoin(base, location) if location.startswith("/") else location
            scheme = urlparse(url).scheme
            label = (name or url.rstrip("/").rsplit("/", 1)[-1] or "output").rsplit("/", 1)[-1]
            if label in names:
                label = f"{len(found) + 1}_{label}"
            names.add(label)
            downloadable = scheme in ("http", "https")
            note = None
            if scheme == "file":
                note = "stays on the node (a file path there, not downloadable through WES)"
            elif not downloadable:
                note = f"not downloadable through WES ({scheme or 'no'} URL scheme)"
            found.append(
                RemoteResult(
                    name=label,
                    url=url,
                    size=size,
                    downloadable=downloadable,
                    note=note,
                )
            )
        return found

    def download(
        self,
        target: ServiceTarget,
        creds: Credentials,
        result: RemoteResult,
        *,
        password: str | None = None,
    ) -> ByteStream:
        return self._download(target, creds, result, password)

    @asynccontextmanager
    async def _download(
        self, target: ServiceTarget, creds: Credentials, result: RemoteResult, password: str | None
    ) -> AsyncIterator[AsyncIterator[bytes]]:
        if not result.url or not result.downloadable:
            raise RemoteNotFound(f"download {result.name}: {result.note or 'not downloadable'}")
        # The token goes only to the node itself, never to another host an output points at.
        same_origin = _same_origin(result.url, self.api_root(target))
        headers = await self.auth_headers(target, creds) if same_origin else {}
        async with fetch_result(
            self.client,
            result.url,
            result.name,
            password=password,
            headers=headers,
            workdir=self.workdir,
        ) as chunks:
            yield chunks


def _same_origin(url: str, root: str) -> bool:
    a, b = urlparse(url), urlparse(root)
    return (a.scheme, a.hostname, a.port) == (b.scheme, b.hostname, b.port)


def _short(response: httpx.Response) -> str:
    return error_message(response)
