"""The one interface every remote imputation service is driven through, and its error hierarchy.

The job-processor's workers only ever see these types: a `ServiceTarget` (what the registry says
about a service), the user's `Credentials` (from the vault), a `JobSpec` (what to run), and the
answers `Submission`, `RemoteStatus`, `RemoteResult`, `CheckResult`. Each protocol module
(`michigan`, `ga4gh_wes`, `dnastack`) implements `Adapter` on an `httpx.AsyncClient` the caller
owns (its timeouts and pool are the caller's policy).

Errors form one hierarchy so the worker decides by class, never by parsing text:
`RemoteUnavailable` is transient (back off, pause, never fail the job at once); `AuthFailed`
means the stored credentials are wrong or expired; `RemoteRejected` is the remote's permanent
"no" with its own message; `RemoteNotFound` means the remote job vanished; `NotSubmittable`
means this target cannot take this job at all. Messages are written for the job's owner and
never contain a credential.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import httpx

__all__ = [
    "TERMINAL_STATES",
    "Adapter",
    "AdapterError",
    "AuthFailed",
    "ByteStream",
    "CheckResult",
    "CredentialKind",
    "Credentials",
    "InputFile",
    "JobSpec",
    "NotSubmittable",
    "RemoteNotFound",
    "RemoteRejected",
    "RemoteResult",
    "RemoteState",
    "RemoteStatus",
    "RemoteUnavailable",
    "ResultUnreadable",
    "ServiceTarget",
    "Submission",
]

ServiceType = Literal["michigan", "ga4gh_wes", "dnastack"]
RemoteState = Literal["queued", "running", "completed", "failed", "cancelled", "paused", "unknown"]
TERMINAL_STATES: frozenset[str] = frozenset({"completed", "failed", "cancelled"})
CredentialKind = Literal["none", "token", "client_credentials"]
ByteStream = AbstractAsyncContextManager[AsyncIterator[bytes]]


# ---------------------------------------------------------------------------------- errors
class AdapterError(Exception):
    """Anything that went wrong talking to a remote service; `message` is safe to show."""

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code


class RemoteUnavailable(AdapterError):
    """Transient: connect errors, timeouts, 5xx, 429, malformed answers. Retry later."""


class AuthFailed(AdapterError):
    """401/403: the user's credentials are wrong, expired or not allowed."""


class RemoteRejected(AdapterError):
    """The remote refused the request for good (its own message is kept)."""


class RemoteNotFound(AdapterError):
    """The remote job (or result) no longer exists."""


class NotSubmittable(AdapterError):
    """This target cannot run this job (an option its workflow does not take, say)."""


class ResultUnreadable(AdapterError):
    """A result was downloaded but cannot be opened (wrong password, corrupt archive)."""


# ---------------------------------------------------------------------------------- inputs
def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


@dataclass(frozen=True)
class ServiceTarget:
    """What an adapter needs of a registered service (from `GET /internal/services/{id}`)."""

    id: uuid.UUID
    slug: str
    service_type: str  # "michigan" | "ga4gh_wes" | "dnastack"
    base_url: str
    api_url: str | None = None
    app_id: str | None = None  # Cloudgene "imputationserver2" or "id@version", as stored
    workflow_profile: dict[str, Any] | None = None  # WES: how to build POST /runs
    auth: dict[str, Any] = field(default_factory=dict)  # e.g. DNAstack token endpoint, mode
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_registry(cls, payload: dict[str, Any]) -> ServiceTarget:
        """Build from the registry's `ServiceDetail` JSON (unknown keys are kept in `raw`)."""
        options = payload.get("protocol_options")
        options = options if isinstance(options, dict) else {}
        profile = payload.get("workflow_profile")
        return cls(
            id=uuid.UUID(str(payload["id"])),
            slug=str(payload["slug"]),
            service_type=str(payload["kind"]),
            base_url=str(payload["base_url"]).rstrip("/"),
            api_url=(_text(payload.get("api_url")) or "").rstrip("/") or None,
            app_id=_text(payload.get("cloudgene_app_id")),
            workflow_profile=profile if isinstance(profile, dict) else None,
            auth={
                "credential_type": payload.get("credential_type", "none"),
                "requires_credentials": bool(payload.get("requires_credentials")),
                **options,
            },
            raw=payload,
        )


@dataclass(frozen=True)
class Credentials:
    """A user's secret for one service; never logged (repr hides the values)."""

    kind: CredentialKind
    values: dict[str, str] = field(default_factory=dict, repr=False)

    @classmethod
    def none(cls) -> Credentials:
        return cls("none", {})

    @classmethod
    def from_vault(cls, payload: dict[str, Any] | None) -> Credentials:
        """From user-service's `CredentialSecretOut` (None: the user stored nothing)."""
        if not payload:
            return cls.none()
        secret = payload.get("secret")
        values = {str(k): str(v) for k, v in secret.items()} if isinstance(secret, dict) else {}
        kind = str(payload.get("credential_type", "none"))
        if kind == "oauth_client_credentials":
            return cls("client_credentials", values)
        if kind in ("api_token", "bearer_token"):
            return cls("token", values)
        return cls.none()

    @property
    def token(self) -> str | None:
        return self.values.get("token") if self.kind == "token" else None


@dataclass(frozen=True)
class InputFile:
    """One input VCF: metadata, a way to stream its bytes, and a signed link when one exists."""

    file_id: uuid.UUID
    filename: str
    size: int
    sha256: str | None
    open: Callable[[], ByteStream] = field(repr=False, compare=False)
    url: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class JobSpec:
    """What to run. `tag` goes into the remote job's name/tags so a lost submit can be found."""

    job_id: uuid.UUID
    name: str
    panel: str  # the panel's remote id (Cloudgene refpanel, WES panel id)
    build: str
    phasing: str
    population: str | None
    r2_filter: float | None
    mode: Literal["imputation", "qc_only"]
    inputs: list[InputFile]
    result_password: str | None = field(default=None, repr=False)
    panel_location: str | None = None  # WES: where the panel lives on the node
    tag: str = ""

    def __post_init__(self) -> None:
        if not self.tag:
            object.__setattr__(self, "tag", f"fedimpute-{self.job_id}")


# ---------------------------------------------------------------------------------- answers
@dataclass
class Submission:
    remote_id: str
    raw: dict[str, Any] = field(default_factory=dict)


@dataclass
class RemoteStatus:
    state: RemoteState
    remote_state: str  # the raw remote value ("2", "RUNNING", ...)
    progress: float | None = None  # 0..1 when the remote says
    queue_position: int | None = None
    message: str | None = None  # remote text a user can act on (a failure's reason)
    steps: list[str] = field(default_factory=list)

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL_STATES


@dataclass
class RemoteResult:
    """A result file of a finished remote job. `downloadable=False` (with a `note`) when the
    file exists but cannot be fetched through the API (a `file://` path on a WES node)."""

    name: str
    url: str | None
    size: int | None
    downloadable: bool
    note: str | None = None
    extra: dict[str, Any] = field(default_factory=dict, repr=False)  # adapter-private details


@dataclass
class CheckResult:
    ok: bool
    message: str


class Adapter(Protocol):
    """One remote protocol. Every method may raise any `AdapterError`."""

    service_type: str

    async def verify_credentials(self, target: ServiceTarget, creds: Credentials) -> CheckResult:
        """Check the credentials against the service itself, using no job quota."""

    async def submit(self, target: ServiceTarget, creds: Credentials, spec: JobSpec) -> Submission:
        """Send the job; the remote id is the answer."""

    async def find(
        self, target: ServiceTarget, creds: Credentials, spec: JobSpec
    ) -> Submission | None:
        """Look for a job we may have submitted already (by `spec.tag`), to reconcile."""

    async def status(
        self, target: ServiceTarget, creds: Credentials, remote_id: str
    ) -> RemoteStatus: ...

    async def cancel(
        self, target: ServiceTarget, creds: Credentials, remote_id: str
    ) -> CheckResult:
        """ok=False with a note when the remote accepts but ignores cancels."""

    async def results(
        self, target: ServiceTarget, creds: Credentials, remote_id: str
    ) -> list[RemoteResult]: ...

    def download(
        self,
        target: ServiceTarget,
        creds: Credentials,
        result: RemoteResult,
        *,
        password: str | None = None,
    ) -> ByteStream:
        """Stream one result, decrypted with `password` (the job's `result_password`) when the
        remote encrypted it (Cloudgene's zips); adapters without encryption ignore it."""


AdapterFactory = Callable[[httpx.AsyncClient], Adapter]
