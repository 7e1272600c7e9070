"""What the gateway answers itself outside ``/api``: its root, and the problem-type pages.

``GET /`` is the front door a newcomer opens first: until a web UI exists, a short page (or
JSON, for a client that asks for it) pointing at the API docs, the OpenAPI document and the
platform status. ``GET /problems/<slug>`` documents each RFC 9457 problem ``type`` the APIs
answer with (``fedimpute_shared.problem_types``), so every ``type`` URI resolves to the
project's own documentation.
"""

from __future__ import annotations

import html

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from fedimpute_shared.problem_types import PROBLEM_TYPES, render_html, render_index
from fedimpute_shared.problems import NotFound

router = APIRouter(include_in_schema=False)

LINKS = {
    "docs": ("/docs", "Interactive API documentation (Swagger UI)"),
    "openapi": ("/api/openapi.json", "The OpenAPI 3.1 document of the whole public API"),
    "status": ("/api/status", "Platform status: services and external imputation services"),
    "problems": ("/problems", "The error types (RFC 9457 problem details) and what to do"),
}


def _wants_html(request: Request) -> bool:
    """A browser (``text/html`` preferred over JSON) gets a page; anything else JSON."""
    accept = request.headers.get("accept", "")
    return "text/html" in accept and accept.find("text/html") < _json_position(accept)


def _json_position(accept: str) -> int:
    position = accept.find("application/json")
    return len(accept) + 1 if position < 0 else position


@router.get("/")
async def root(request: Request) -> Response:
    if not _wants_html(request):
        return JSONResponse(
            {
                "name": "FedImpute API gateway",
                "api": "/api",
                "links": {name: href for name, (href, _) in LINKS.items()},
            }
        )
    items = "".join(
        f'<li><a href="{href}">{html.escape(href)}</a> &mdash; {html.escape(text)}</li>'
        for href, text in LINKS.values()
    )
    return HTMLResponse(
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>FedImpute</title>'
        "<style>body{font-family:system-ui,sans-serif;max-width:46rem;margin:2rem auto;"
        "padding:0 1rem;line-height:1.5}</style></head><body><h1>FedImpute</h1>"
        "<p>The Federated Genomic Imputation Platform&rsquo;s API gateway. There is no web "
        "interface yet: everything is under <code>/api</code>.</p>"
        f"<ul>{items}</ul>"
        "<p>Log in with <code>POST /api/auth/login</code> and send "
        "<code>Authorization: Bearer &lt;token&gt;</code>.</p></body></html>"
    )


@router.get("/problems")
async def problem_index(request: Request) -> Response:
    if not _wants_html(request):
        return JSONResponse([t.as_json() for t in PROBLEM_TYPES.values()])
    return HTMLResponse(render_index())


@router.get("/problems/{slug}")
async def problem_type(slug: str, request: Request) -> Response:
    problem = PROBLEM_TYPES.get(slug)
    if problem is None:
        raise NotFound("no such problem type; /problems lists them")
    if not _wants_html(request):
        return JSONResponse(problem.as_json())
    return HTMLResponse(render_html(problem))
