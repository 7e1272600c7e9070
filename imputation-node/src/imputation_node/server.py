"""The node's HTTP server: sapporo's WES app, plus the workflow it runs served as static files.

Started by ``imputation-node serve`` (which writes the configuration and passes it in sapporo's
``SAPPORO_*`` variables) as ``python -m imputation_node.server``, a process of its own: sapporo
reads its settings from the command line as well, so this process is given no arguments.

URL layout (``<base>`` = the node's public URL):

- ``<base>/ga4gh/wes/v1/...``: the WES API (sapporo; also answered at ``<base>/...``);
- ``<base>/workflows/fedimpute-imputation/<version>/imputation.cwl``: the workflow (and its
  tools and scripts beside it), the one ``workflow_url`` the node runs.
"""

from __future__ import annotations

import logging.config

import uvicorn
from sapporo.app import create_app, init_app_state
from sapporo.config import get_config, logging_config
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from imputation_node.node import WORKFLOW_DIR, WORKFLOW_ROUTE


def node_app(wes: ASGIApp, workflow: ASGIApp) -> ASGIApp:
    """Requests under WORKFLOW_ROUTE to the workflow files, everything else to sapporo.

    A dispatcher in front rather than a mount inside sapporo's app: sapporo sets a root path
    (its URL prefix), and a mount below it would be found under that prefix only.
    """
    prefix = WORKFLOW_ROUTE + "/"

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] == "http" and path.startswith(prefix):
            inner = dict(scope, path=path[len(WORKFLOW_ROUTE) :], root_path="")
            await workflow(inner, receive, send)
        else:
            await wes(scope, receive, send)

    return app


def main() -> None:
    config = get_config()
    logging.config.dictConfig(logging_config(config.debug))
    init_app_state()
    # In a Starlette app, so a missing file is a 404 response rather than an exception.
    files = Starlette(routes=[Mount("", app=StaticFiles(directory=WORKFLOW_DIR))])
    app = node_app(create_app(), files)
    uvicorn.run(app, host=config.host, port=config.port, log_config=None)


if __name__ == "__main__":
    main()
