"""A real HTTP server on loopback that plays external services in tests, including the broken
and hostile ones (HTML, bad JSON, redirect loops, huge bodies, silence, slowness)."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

Writer = asyncio.StreamWriter
Behaviour = Callable[[Writer], Awaitable[None]]


def _head(status: int, headers: dict[str, str]) -> bytes:
    lines = [f"HTTP/1.1 {status} X"] + [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def respond(
    status: int,
    body: bytes,
    content_type: str = "application/json",
    delay: float = 0,
    **headers: str,
) -> Behaviour:
    async def run(writer: Writer) -> None:
        if delay:
            await asyncio.sleep(delay)
        hdrs = {"Content-Type": content_type, "Content-Length": str(len(body)), **headers}
        writer.write(_head(status, hdrs) + body)

    return run


def json_body(obj: Any, status: int = 200, delay: float = 0) -> Behaviour:
    return respond(status, json.dumps(obj).encode(), delay=delay)


def redirect(location: str, status: int = 302) -> Behaviour:
    return respond(status, b"", content_type="text/plain", Location=location)


def hang() -> Behaviour:
    async def run(writer: Writer) -> None:
        await asyncio.sleep(3600)

    return run


def close_at_once() -> Behaviour:
    async def run(writer: Writer) -> None:
        return None  # the connection is closed without a byte

    return run


def huge(size: int, declare_length: bool) -> Behaviour:
    async def run(writer: Writer) -> None:
        headers = {"Content-Type": "application/json"}
        if declare_length:
            headers["Content-Length"] = str(size)
        else:
            headers["Transfer-Encoding"] = "chunked"
        writer.write(_head(200, headers))
        chunk = b"[" + b"0," * 32768
        sent = 0
        while sent < size:
            piece = chunk[: min(len(chunk), size - sent)]
            writer.write(
                f"{len(piece):x}\r\n".encode() + piece + b"\r\n" if not declare_length else piece
            )
            sent += len(piece)
            await writer.drain()

    return run


class FakeRemote:
    """Routes by path to a behaviour; counts hits per path."""

    def __init__(self) -> None:
        self.routes: dict[str, Behaviour] = {}
        self.hits: Counter[str] = Counter()
        self.heads: list[str] = []  # every request head received (to check what was sent)
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.sockets[0].getsockname()[:2]
        return f"http://{host}:{port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: Writer) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                path = head.split(b" ", 2)[1].decode()
                self.hits[path] += 1
                self.heads.append(head.decode("latin-1"))
                behaviour = self.routes.get(path, respond(404, b'{"msg":"not found"}'))
                await behaviour(writer)
                await writer.drain()
                if behaviour.__qualname__.startswith("close_at_once"):
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


WES_SERVICE_INFO = {
    "id": "org.example.wes",
    "name": "Sim WES",
    "type": {"group": "org.ga4gh", "artifact": "wes", "version": "1.1.0"},
    "organization": {"name": "Example", "url": "https://example.org"},
    "version": "1.0.0",
    "workflow_type_versions": {
        "CWL": {"workflow_type_version": ["v1.0"]},
        "WDL": {"workflow_type_version": ["1.0"]},
    },
    "supported_wes_versions": ["1.0.0", "1.1.0"],
    "supported_filesystem_protocols": ["file", "https"],
    "workflow_engine_versions": {"cromwell": {"workflow_engine_version": ["85"]}},
    "default_workflow_engine_parameters": [],
    "system_state_counts": {"QUEUED": 0, "RUNNING": 1, "COMPLETE": 3},
    "auth_instructions_url": "https://example.org/auth",
    "tags": {},
}

# Exact bytes captured from ILIFU (specs/external-protocols.md §3.1).
STARTER_KIT_SERVICE_INFO = json.loads(
    (Path(__file__).parent / "data" / "starter_kit_service_info.json").read_text()
)

CLOUDGENE_COUNTERS = {"complete": {"imputationserver2": 12}, "queue": {"size": 3}, "users": 42}
