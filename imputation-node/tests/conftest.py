"""Fixtures for the imputation node's tests.

The node runs from its own virtualenv (``imputation-node/.venv``, made by ``make install``) and
needs Debian's beagle, bcftools, tabix and jq; these tests drive it as a user would: the
``imputation-node`` command, cwltool, and HTTP. They import only the node's standard-library
modules (``imputation_node.accuracy``, the workflow's scripts) into the test process.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

NODE_ROOT = Path(__file__).resolve().parents[1]
NODE_BIN = NODE_ROOT / ".venv" / "bin"
sys.path.insert(0, str(NODE_ROOT / "src"))
WES = "/ga4gh/wes/v1"
TERMINAL = {"COMPLETE", "EXECUTOR_ERROR", "SYSTEM_ERROR", "CANCELED", "PREEMPTED"}


def load_script(name: str) -> ModuleType:
    """One of the workflow's scripts (workflow/scripts/NAME.py) as a module."""
    path = NODE_ROOT / "workflow" / "scripts" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"workflow_{name}", path)
    assert spec
    assert spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while being created
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session", autouse=True)
def node_installed() -> None:
    missing = [t for t in ("java", "bcftools", "tabix", "bgzip", "jq") if not shutil.which(t)]
    if not (NODE_BIN / "imputation-node").exists():
        missing.append("imputation-node/.venv")
    if not Path("/usr/share/beagle/beagle.jar").exists():
        missing.append("beagle")
    if missing:
        pytest.fail(
            f"the imputation node is not installed ({', '.join(missing)}): run `make install`"
        )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Node:
    url: str
    data_dir: Path
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def workflow_url(self) -> str:
        return f"{self.url}/workflows/fedimpute-imputation/1.0.0/imputation.cwl"

    @property
    def panel_location(self) -> str:
        return (self.data_dir / "panels" / "sim-ooa-chr20").as_uri()

    @property
    def heldout(self) -> Path:
        return self.data_dir / "heldout" / "sim-ooa-chr20"

    @property
    def inbox(self) -> Path:
        path = self.data_dir / "inbox"
        path.mkdir(exist_ok=True)
        return path

    def params(self, targets: list[str], **extra: Any) -> dict[str, Any]:
        return {
            "target_vcfs": [{"class": "File", "location": t} for t in targets],
            "panel": {"class": "Directory", "location": self.panel_location},
            "build": "hg38",
            "population": "all",
            "r2_filter": 0.0,
            "output_prefix": "test",
            **extra,
        }

    def submit(self, params: dict[str, Any], **form: str) -> httpx.Response:
        """POST /runs as a WES client sends it (multipart, JSON-encoded params)."""
        fields = {
            "workflow_type": "CWL",
            "workflow_type_version": "v1.2",
            "workflow_engine": "cwltool",
            "workflow_url": self.workflow_url,
            "workflow_params": json.dumps(params),
        } | form
        return httpx.post(f"{self.url}{WES}/runs", files={k: (None, v) for k, v in fields.items()})

    def run_id(self, params: dict[str, Any]) -> str:
        response = self.submit(params)
        assert response.status_code == 200, response.text
        run_id: str = response.json()["run_id"]
        return run_id

    def wait(self, run_id: str, within: float = 240) -> dict[str, Any]:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            state = httpx.get(f"{self.url}{WES}/runs/{run_id}/status").json()["state"]
            if state in TERMINAL:
                log: dict[str, Any] = httpx.get(f"{self.url}{WES}/runs/{run_id}").json()
                return log
            time.sleep(0.5)
        raise AssertionError(f"run {run_id} did not finish within {within} s")


@pytest.fixture(scope="session")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    """The node started by its one command on a fresh data folder (so it generates the CI panel),
    with a short download timeout so the test of a silent input URL is quick."""
    data_dir = tmp_path_factory.mktemp("node")
    port = free_port()
    log = data_dir / "serve.log"
    command = [
        str(NODE_BIN / "imputation-node"), "serve", "--data-dir", str(data_dir),
        "--port", str(port), "--download-timeout", "3", "--max-threads", "2",
    ]  # fmt: skip
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    node = Node(f"http://127.0.0.1:{port}", data_dir, process, log)
    deadline = time.monotonic() + 90
    while True:
        try:
            if httpx.get(f"{node.url}{WES}/service-info").status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"the node did not start:\n{log.read_text()}")
        time.sleep(0.3)
    yield node
    process.terminate()
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture(scope="session")
def file_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """An HTTP server on loopback serving a folder: how a platform hands the node its inputs."""
    root = tmp_path_factory.mktemp("served")
    handler = partial(SimpleHTTPRequestHandler, directory=str(root))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", root
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="session")
def silent_server() -> Iterator[str]:
    """A URL whose server accepts the connection and never answers."""
    listener = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
                held.append(conn)
            except TimeoutError:
                continue
            except OSError:
                return

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}/chr20.vcf.gz"
    stop.set()
    thread.join(2)
    for conn in held:
        conn.close()
    listener.close()


def node_python(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``python -m imputation_node ARGS`` in the node's environment."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run(
        [str(NODE_BIN / "python"), "-m", "imputation_node", *args],
        capture_output=True, text=True, check=True, cwd=cwd, env=env,
    )  # fmt: skip
