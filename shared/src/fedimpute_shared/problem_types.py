"""The documentation of every problem type a FedImpute API answers with (RFC 9457 ``type``).

A problem's ``type`` is ``/problems/<slug>`` (:data:`fedimpute_shared.problems.PROBLEM_TYPE_BASE`):
a URI reference the client resolves against the URL it called, so through the gateway it is
``https://<gateway>/problems/<slug>``, which the gateway answers with the page written here
(:func:`render_html`, or the JSON of :class:`ProblemType` when asked for JSON). The project owns
those URIs; none points at a domain it does not control.

Every slug a service raises must be listed in :data:`PROBLEM_TYPES` (a test walks every
``ProblemError`` subclass of the installed services and checks it).
"""

from __future__ import annotations

import html
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["PROBLEM_TYPES", "ProblemType", "render_html", "render_index"]


@dataclass(frozen=True)
class ProblemType:
    """What a problem type means and what the client can do about it."""

    slug: str
    title: str
    status: int
    meaning: str
    what_to_do: str
    members: tuple[str, ...] = ()  # extension members a client may act on
    other_statuses: tuple[int, ...] = ()  # the same problem answered with another status

    @property
    def statuses(self) -> tuple[int, ...]:
        return (self.status, *self.other_statuses)

    def as_json(self) -> dict[str, Any]:
        body = asdict(self)
        body["members"] = list(self.members)
        body["other_statuses"] = list(self.other_statuses)
        body["type"] = f"/problems/{self.slug}"
        return body


_TYPES = [
    ProblemType(
        "bad-request",
        "Bad Request",
        400,
        "The request is not one the endpoint can act on: a parameter combination it refuses, "
        "a malformed header, a cursor that was not issued by this API.",
        "Read `detail`, fix the request and send it again; repeating it unchanged fails again.",
    ),
    ProblemType(
        "unauthorized",
        "Unauthorized",
        401,
        "No valid credentials came with the request: no `Authorization` header, an expired or "
        "revoked access token, a personal API token that no longer exists, or a wrong password.",
        "Log in again (`POST /api/auth/login`) or refresh the session (`POST /api/auth/refresh`)"
        " and send `Authorization: Bearer <token>`.",
    ),
    ProblemType(
        "forbidden",
        "Forbidden",
        403,
        "The caller is known but its role or token scopes do not allow this action.",
        "Ask an administrator for the role, or create a token with the needed scope.",
    ),
    ProblemType(
        "not-found",
        "Not Found",
        404,
        "Nothing exists at this path for this caller. Another user's object is also a 404: the "
        "API never tells whether an id belongs to someone else.",
        "Check the id (list the collection to find it) and the path.",
    ),
    ProblemType(
        "conflict",
        "Conflict",
        409,
        "The request clashes with the current state: a name or slug already taken, an object "
        "in a state that does not allow the change (a finished job cancelled again...).",
        "Read the current state (GET the object), then decide; the body may name the clashing"
        " field (e.g. `slug`).",
        ("slug",),
    ),
    ProblemType(
        "gone",
        "Gone",
        410,
        "The object existed and no longer does: an expired download link, a file past its "
        "retention period, an upload that timed out.",
        "Create a new link or upload again; the old one will not come back.",
    ),
    ProblemType(
        "precondition-failed",
        "Precondition Failed",
        412,
        "An `If-Match` / `If-Unmodified-Since` condition did not hold: someone changed the "
        "object since you read it.",
        "GET it again (new `ETag`), reapply your change, send it with the new `If-Match`.",
    ),
    ProblemType(
        "payload-too-large",
        "Payload Too Large",
        413,
        "The body exceeds a limit: the JSON body cap of API calls, or the maximum file size.",
        "Send less; for files, the limit is in `limit_bytes` and `GET /api/files/usage`.",
        ("limit_bytes",),
    ),
    ProblemType(
        "unsupported-media-type",
        "Unsupported Media Type",
        415,
        "The `Content-Type` of the body is not one the endpoint reads.",
        "Send `application/json` to JSON endpoints; files as a raw body or multipart form.",
    ),
    ProblemType(
        "range-not-satisfiable",
        "Range Not Satisfiable",
        416,
        "The `Range` header asks for bytes outside the file.",
        "Ask for a range within the size given in `Content-Range: bytes */<size>`.",
    ),
    ProblemType(
        "validation-error",
        "Request validation failed",
        422,
        "A field of the request is missing, of the wrong type or out of range.",
        "Each entry of `errors` names the field (`pointer`, `field`) and the reason (`message`,"
        " `code`): fix those fields.",
        ("errors",),
    ),
    ProblemType(
        "malformed-json",
        "Malformed JSON body",
        422,
        "The body is not valid JSON.",
        "Check the quoting and commas; `errors` points at where parsing stopped.",
        ("errors",),
    ),
    ProblemType(
        "unprocessable",
        "Unprocessable Content",
        422,
        "The request is well-formed but its content is refused by a rule: an unsafe URL, a "
        "weak password, an invalid VCF (with its validation `report`)...",
        "Read `detail` and `errors` (or `report` for files) and correct the content.",
        ("errors", "report"),
    ),
    ProblemType(
        "locked",
        "Locked",
        423,
        "The object is being written by another request (a tus upload in progress).",
        "Wait for the other request to finish, then retry.",
    ),
    ProblemType(
        "checksum-mismatch",
        "Checksum mismatch",
        460,
        "The bytes received do not match the checksum you declared: tus `Upload-Checksum` "
        "(460, the tus checksum extension's status), or `X-Checksum-Sha256`, `Content-MD5` of a"
        " simple upload (422): they were corrupted on the way.",
        "Send the same bytes again (tus: resume from the last accepted offset).",
        other_statuses=(422,),
    ),
    ProblemType(
        "rate-limited",
        "Too Many Requests",
        429,
        "This client sent more requests than its rate limit allows (per token or address; "
        "logins and uploads have their own, smaller limits).",
        "Wait the number of seconds in `Retry-After`; the `RateLimit` headers show the budget.",
    ),
    ProblemType(
        "internal-error",
        "Internal Server Error",
        500,
        "An unexpected error in the service; its traceback went to the service log, not here.",
        "Retry later; if it persists, report it with the response's `X-Request-ID`.",
    ),
    ProblemType(
        "bad-gateway",
        "Bad Gateway",
        502,
        "A service behind the one you called (or an external imputation service) answered "
        "with something unusable.",
        "Retry later; `detail` names the upstream when it is safe to.",
    ),
    ProblemType(
        "upstream-refused",
        "Upstream refused the connection",
        502,
        "The service behind the gateway refused the WebSocket upgrade; the response carries the"
        " status that service answered (401 without a valid token, 404 for an unknown path...).",
        "Act on the status as for any other answer of that service (log in again on a 401).",
    ),
    ProblemType(
        "service-unavailable",
        "Service Unavailable",
        503,
        "The service (or the one it needs) is not running or not ready: starting, restarting "
        "or overloaded.",
        "Retry after `Retry-After` seconds; `GET /api/status` shows what is down.",
    ),
    ProblemType(
        "gateway-timeout",
        "Gateway Timeout",
        504,
        "The service behind the gateway did not answer in time.",
        "Retry; a long operation has an asynchronous form (a job, a background validation).",
    ),
    ProblemType(
        "quota-exceeded",
        "Insufficient Storage",
        507,
        "Storing this file would take you over your storage quota.",
        "Delete files you no longer need (`GET /api/files/usage` shows use and quota).",
        ("quota_bytes", "size_bytes"),
    ),
]

PROBLEM_TYPES: dict[str, ProblemType] = {t.slug: t for t in _TYPES}


def render_html(problem: ProblemType) -> str:
    """One problem type as a small standalone page."""
    members = (
        "<p>Members a client can act on: "
        + ", ".join(f"<code>{html.escape(m)}</code>" for m in problem.members)
        + "</p>"
        if problem.members
        else ""
    )
    return _page(
        f"{problem.title} ({problem.status})",
        f"<p><code>type: /problems/{html.escape(problem.slug)}</code> &middot; HTTP "
        f"{' or '.join(str(s) for s in problem.statuses)}</p>"
        f"<h2>What it means</h2><p>{_inline(problem.meaning)}</p>"
        f"<h2>What to do</h2><p>{_inline(problem.what_to_do)}</p>{members}"
        '<p><a href="/problems">All problem types</a> &middot; <a href="/docs">API docs</a></p>',
    )


def render_index() -> str:
    """Every problem type, one line each."""
    rows = "".join(
        f'<li><a href="/problems/{t.slug}"><code>{t.slug}</code></a> '
        f"&mdash; {t.status} {html.escape(t.title)}</li>"
        for t in sorted(_TYPES, key=lambda t: (t.status, t.slug))
    )
    return _page(
        "FedImpute problem types",
        "<p>Every error of the FedImpute API is an RFC 9457 <code>application/problem+json</code>"
        " body whose <code>type</code> is one of these.</p>"
        f"<ul>{rows}</ul>",
    )


def _inline(text: str) -> str:
    """Escape, then show `backticked` words as code."""
    parts = html.escape(text).split("`")
    return "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts))


def _page(title: str, body: str) -> str:
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title>"
        "<style>body{font-family:system-ui,sans-serif;max-width:46rem;margin:2rem auto;"
        "padding:0 1rem;line-height:1.5}code{background:#f3f3f3;padding:0 .2em}</style>"
        f"</head><body><h1>{html.escape(title)}</h1>{body}</body></html>"
    )
