"""RFC 9457 problem details: the one error format of every FedImpute API.

Domain code raises a :class:`ProblemError` subclass (``NotFound``, ``Conflict``...). The handlers
installed by :func:`install_problem_handlers` turn those, Starlette's HTTP errors and request
validation errors into ``application/problem+json`` bodies. Nothing else reaches a client: an
unexpected exception becomes a bare 500 problem and its traceback goes only to the log.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
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
    "field_problems",
    "install_problem_handlers",
    "problem_response",
    "problem_responses",
]

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_TYPE_BASE = "https://fedimpute.dev/problems/"

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
    """OpenAPI ``responses=`` entries for the given domain errors, so /docs lists them."""
    return {
        err.status: {
            "model": Problem,
            "description": err.title or HTTPStatus(err.status).phrase,
            "content": {PROBLEM_MEDIA_TYPE: {}},
        }
        for err in errors
    }
