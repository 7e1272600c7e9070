"""RFC 9457 problem details: the one error format of every FedImpute API.

Domain code raises a :class:`ProblemError` subclass (``NotFound``, ``Conflict``...). The handlers
installed by :func:`install_problem_handlers` turn those, Starlette's HTTP errors and request
validation errors into ``application/problem+json`` bodies. Nothing else reaches a client: an
unexpected exception becomes a bare 500 problem and its traceback goes only to the log.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

__all__ = [
    "PROBLEM_MEDIA_TYPE",
    "PROBLEM_TYPE_BASE",
    "BadGateway",
    "BadRequest",
    "Conflict",
    "FieldProblem",
    "Forbidden",
    "GatewayTimeout",
    "Gone",
    "NotFound",
    "PayloadTooLarge",
    "PreconditionFailed",
    "Problem",
    "ProblemError",
    "RangeNotSatisfiable",
    "ServiceUnavailable",
    "TooManyRequests",
    "Unauthorized",
    "Unprocessable",
    "UnsupportedMediaType",
    "document_problems",
    "field_problems",
    "install_problem_handlers",
    "problem_response",
    "problem_responses",
]

PROBLEM_MEDIA_TYPE = "application/problem+json"
# A URI reference resolved against the URL called: through the gateway, each type is a page of the
# project's own documentation (fedimpute_shared.problem_types, served at /problems/<slug>).
PROBLEM_TYPE_BASE = "/problems/"

logger = logging.getLogger(__name__)


class FieldProblem(BaseModel):
    """One invalid field: where it is (a JSON pointer into the request) and what is wrong."""

    pointer: str = Field(examples=["#/body/base_url"])
    field: str = Field(examples=["body.base_url"])
    message: str
    code: str = Field(examples=["value_error"])


class Problem(BaseModel):
    """The RFC 9457 body. Extra members (``errors``, limits...) are allowed."""

    model_config = {"extra": "allow"}

    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    errors: list[FieldProblem] | None = None


class ProblemError(Exception):
    """Base of every domain error. Subclasses fix ``status`` and a problem ``slug``.

    ``extra`` members are added to the body (e.g. ``{"limit_bytes": ...}``) so a client can act
    on them without parsing ``detail``.
    """

    status: int = 500
    slug: str = "internal-error"
    title: str | None = None

    def __init__(
        self,
        detail: str | None = None,
        *,
        title: str | None = None,
        headers: dict[str, str] | None = None,
        errors: Sequence[FieldProblem] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail or title or self.slug)
        self.detail = detail
        self.headers = headers or {}
        self.errors = list(errors) if errors else None
        self.extra = extra
        if title is not None:
            self.title = title

    def to_problem(self, instance: str | None = None) -> Problem:
        return Problem(
            type=PROBLEM_TYPE_BASE + self.slug,
            title=self.title or HTTPStatus(self.status).phrase,
            status=self.status,
            detail=self.detail,
            instance=instance,
            errors=self.errors,
            **self.extra,
        )


class BadRequest(ProblemError):
    status, slug = 400, "bad-request"


class Unauthorized(ProblemError):
    status, slug = 401, "unauthorized"

    def __init__(self, detail: str | None = None, **kw: Any) -> None:
        kw.setdefault("headers", {"WWW-Authenticate": 'Bearer realm="fedimpute"'})
        super().__init__(detail, **kw)


class Forbidden(ProblemError):
    status, slug = 403, "forbidden"


class NotFound(ProblemError):
    status, slug = 404, "not-found"


class Conflict(ProblemError):
    status, slug = 409, "conflict"


class Gone(ProblemError):
    status, slug = 410, "gone"


class PreconditionFailed(ProblemError):
    status, slug = 412, "precondition-failed"


class PayloadTooLarge(ProblemError):
    status, slug = 413, "payload-too-large"


class UnsupportedMediaType(ProblemError):
    status, slug = 415, "unsupported-media-type"


class RangeNotSatisfiable(ProblemError):
    status, slug = 416, "range-not-satisfiable"


class Unprocessable(ProblemError):
    status, slug = 422, "unprocessable"


class TooManyRequests(ProblemError):
    status, slug = 429, "rate-limited"


class ServiceUnavailable(ProblemError):
    status, slug = 503, "service-unavailable"


class BadGateway(ProblemError):
    status, slug = 502, "bad-gateway"


class GatewayTimeout(ProblemError):
    status, slug = 504, "gateway-timeout"


def problem_response(problem: Problem, headers: dict[str, str] | None = None) -> JSONResponse:
    """Render a :class:`Problem` with the problem+json media type."""
    return JSONResponse(
        problem.model_dump(mode="json", exclude_none=True),
        status_code=problem.status,
        media_type=PROBLEM_MEDIA_TYPE,
        headers=headers,
    )


def field_problems(errors: Sequence[Any]) -> list[FieldProblem]:
    """Turn pydantic/FastAPI error dicts into :class:`FieldProblem` items with field paths."""
    out = []
    for err in errors:
        loc = [str(part) for part in err.get("loc", ())]
        out.append(
            FieldProblem(
                pointer="#/" + "/".join(loc),
                field=".".join(loc),
                message=_clean_message(err),
                code=str(err.get("type", "invalid")),
            )
        )
    return out


def _clean_message(err: Any) -> str:
    msg = str(err.get("msg", "invalid value"))
    # Pydantic prefixes custom validator messages with "Value error, "; the client wants the reason.
    return msg.removeprefix("Value error, ")


async def _on_problem(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ProblemError)
    return problem_response(exc.to_problem(request.url.path), exc.headers)


async def _on_http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    problem = Problem(
        title=HTTPStatus(exc.status_code).phrase,
        status=exc.status_code,
        detail=exc.detail if isinstance(exc.detail, str) else None,
        instance=request.url.path,
    )
    return problem_response(problem, dict(exc.headers or {}))


async def _on_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = field_problems(exc.errors())
    malformed = any(e.code == "json_invalid" for e in errors)
    problem = Problem(
        type=PROBLEM_TYPE_BASE + ("malformed-json" if malformed else "validation-error"),
        title="Malformed JSON body" if malformed else "Request validation failed",
        status=422,
        detail="; ".join(f"{e.field}: {e.message}" for e in errors),
        instance=request.url.path,
        errors=errors,
    )
    return problem_response(problem)


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    logger.exception("unhandled error on %s %s", request.method, request.url.path)
    problem = Problem(
        title="Internal Server Error",
        status=500,
        detail="An unexpected error occurred; it has been logged.",
        instance=request.url.path,
    )
    return problem_response(problem)


def install_problem_handlers(app: FastAPI) -> None:
    """Make every error of ``app`` an RFC 9457 problem."""
    app.add_exception_handler(ProblemError, _on_problem)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(Exception, _on_unexpected)


def problem_responses(*errors: type[ProblemError]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` entries for the domain errors one route raises itself (a 409,
    a 410...), so /docs lists them. What every route of a kind can answer (401/403 behind a
    token, 404 with a path id, 422 with input...) is added for all operations by
    :func:`document_problems`; routes need not repeat it."""
    return {
        err.status: {
            "model": Problem,
            "description": err.title or HTTPStatus(err.status).phrase,
            "content": {PROBLEM_MEDIA_TYPE: {}},
        }
        for err in errors
    }


# What the platform answers for every operation of a kind, without the route raising it itself:
# the shared auth dependencies, request validation, the body limit and the pagination cursor.
_HTTP_METHODS = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})
_PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}


def _applicable_statuses(operation: dict[str, Any]) -> dict[int, str]:
    """The problem statuses ``operation`` can answer, from what it takes and its security."""
    parameters = [p for p in operation.get("parameters") or [] if isinstance(p, dict)]
    locations = {p.get("in") for p in parameters}
    has_body = "requestBody" in operation
    statuses: dict[int, str] = {}
    if has_body or locations & {"query", "header", "cookie"}:
        statuses[400] = "The request could not be read (a malformed cursor, header or body)"
    if operation.get("security"):
        statuses[401] = "No valid token (missing, expired, revoked or forged)"
        statuses[403] = "The token lacks the role or scope this operation needs"
    if "path" in locations:
        statuses[404] = "No such object, or it belongs to someone else"
    if has_body:
        statuses[413] = "The request body exceeds the service's limit"
    if has_body or parameters:
        statuses[422] = "Request validation failed (see errors[])"
    return statuses


def document_problems(
    spec: dict[str, Any], *, every_operation: dict[int, str] | None = None
) -> dict[str, Any]:
    """Declare in ``spec`` (an OpenAPI document, changed in place) every problem response.

    Each operation gets the statuses the shared machinery can answer for it (401/403 behind a
    token, 404 with a path parameter, 400/413/422 with input), plus ``every_operation`` (what a
    front such as the gateway adds: 429, 502...). Every 4xx/5xx response, including those a
    route declared itself, is given the one content type it is sent with,
    ``application/problem+json``, with the :class:`Problem` schema (FastAPI would otherwise
    document it as ``application/json``, and its 422 as ``HTTPValidationError``, whose schemas
    are then dropped). Done once in the app factory, so no route repeats it.
    """
    schemas = spec.setdefault("components", {}).setdefault("schemas", {})
    if "Problem" not in schemas:
        generated = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(generated.pop("$defs", {}))
        schemas["Problem"] = generated
    for item in (spec.get("paths") or {}).values():
        if not isinstance(item, dict):
            continue
        for method, operation in item.items():
            if method not in _HTTP_METHODS or not isinstance(operation, dict):
                continue
            _document_operation(operation, every_operation or {})
    if not any(name == "HTTPValidationError" for _, name in _refs(spec.get("paths"))):
        schemas.pop("HTTPValidationError", None)
        schemas.pop("ValidationError", None)
    return spec


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:  # a protocol's own status (tus' 460 Checksum Mismatch)
        return "Error"


def _refs(node: Any) -> Iterator[tuple[str, str]]:
    """Every ``(section, name)`` that ``node`` refers to with a local ``$ref``."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str) and value.startswith("#/components/"):
                section, _, name = value.removeprefix("#/components/").partition("/")
                yield section, name
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


def _document_operation(operation: dict[str, Any], every_operation: dict[int, str]) -> None:
    responses: dict[str, Any] = operation.setdefault("responses", {})
    applicable = _applicable_statuses(operation) | every_operation
    for status, description in applicable.items():
        responses.setdefault(str(status), {"description": description})
    for code, response in responses.items():
        if code.isdigit() and code[0] in "45" and isinstance(response, dict):
            response["content"] = {PROBLEM_MEDIA_TYPE: {"schema": dict(_PROBLEM_REF)}}
            if "description" not in response:
                response["description"] = _phrase(int(code))
    operation["responses"] = dict(sorted(responses.items()))
