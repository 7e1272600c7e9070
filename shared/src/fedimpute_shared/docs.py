"""``/docs`` (Swagger UI) and ``/redoc`` served with assets from an installed package.

FastAPI's defaults load Swagger UI and ReDoc from a public CDN, so the pages stay blank on a
machine without internet (an air-gapped cluster, a laptop on a train). The same files ship in
the ``fastapi-offline`` package; every service serves them under ``/docs/assets``.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from starlette.staticfiles import StaticFiles

__all__ = ["ASSETS_PATH", "install_docs"]

ASSETS_PATH = "/docs/assets"
_ASSETS = Path(str(files("fastapi_offline") / "static"))


def install_docs(app: FastAPI, title: str) -> None:
    """Add ``/docs``, ``/redoc`` and their assets to ``app`` (for its ``app.openapi_url``)."""
    app.mount(ASSETS_PATH, StaticFiles(directory=_ASSETS), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{title} - Swagger UI",
            swagger_js_url=f"{root}{ASSETS_PATH}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{ASSETS_PATH}/swagger-ui.css",
            swagger_favicon_url=f"{root}{ASSETS_PATH}/favicon.png",
        )

    @app.get("/redoc", include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_redoc_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{title} - ReDoc",
            redoc_js_url=f"{root}{ASSETS_PATH}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{ASSETS_PATH}/favicon.png",
            with_google_fonts=False,
        )
