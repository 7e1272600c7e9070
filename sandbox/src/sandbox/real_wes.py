"""Real GA4GH WES servers from PyPI, started on loopback for tests against real peers.

The simulators follow the specs; these are the servers the specs were read from, so a client
that works here works on a real node. Two are supported (spec §3.4):

- **sapporo** (DDBJ, WES 1.1): started with a trimmed service-info (CWL + cwltool, since nothing
  else runs without Docker) and a run script whose ``run_cwltool`` calls the local ``cwltool``
  instead of its Docker image. ``url_prefix="/ga4gh/wes/v1"`` serves the API there *and* at the
  root; without it only at the root (sapporo's default).
- **wes-service** (the GA4GH/CWL reference, WES 1.0): its ``cwl_runner`` backend calls the local
  ``cwltool``; it serves only under ``/ga4gh/wes/v1``.

Both are installed by ``make install`` into isolated virtualenvs under ``.tools/wes/<name>``
(their pins clash with ours). ``FEDIMPUTE_WES_PEERS`` points elsewhere if needed. Each server
runs as a child process in its own process group, bound to 127.0.0.1 on a free port, and is
stopped (the whole group) when the handle is stopped.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import httpx

__all__ = [
    "WES_PREFIX",
    "RealWes",
    "WesPeerMissing",
    "cwl_service_info",
    "local_cwltool_run_sh",
    "peer_bin",
    "start_real_wes",
]

WES_PREFIX = "/ga4gh/wes/v1"
PeerKind = Literal["sapporo", "wes-service"]
_START_TIMEOUT = 60.0


class WesPeerMissing(RuntimeError):
    """The real server is not installed (``make install`` installs it)."""


def _peers_root() -> Path | None:
    if configured := os.environ.get("FEDIMPUTE_WES_PEERS"):
        return Path(configured)
    for start in (Path.cwd(), Path(__file__).resolve()):
        for folder in (start, *start.parents):
            candidate = folder / ".tools" / "wes"
            if candidate.is_dir():
                return candidate
    return None


def peer_bin(kind: PeerKind) -> Path:
    """The ``bin/`` folder of the peer's virtualenv, or :class:`WesPeerMissing`."""
    root = _peers_root()
    executable = "sapporo" if kind == "sapporo" else "wes-server"
    if root is None or not (root / kind / "bin" / executable).exists():
        raise WesPeerMissing(f"{kind} is not installed under .tools/wes/ (run `make install`)")
    if shutil.which("jq") is None and kind == "sapporo":
        raise WesPeerMissing("sapporo's run script needs jq on PATH (apt-get install jq)")
    return root / kind / "bin"


def cwl_service_info(
    *, tags: dict[str, str] | None = None, name: str = "FedImpute test node (sapporo)"
) -> dict[str, Any]:
    """A service-info that advertises only what runs here: CWL with the local cwltool.

    ``tags`` go into the service-info ``tags`` map (e.g. ``fedimpute.reference_panels``).
    """
    return {
        "id": "org.fedimpute.test-node",
        "name": name,
        "type": {"group": "org.ga4gh", "artifact": "wes", "version": "1.1.0"},
        "organization": {"name": "FedImpute", "url": "https://example.org"},
        "version": "2.4.0",
        "workflow_type_versions": {"CWL": {"workflow_type_version": ["v1.0", "v1.1", "v1.2"]}},
        "supported_wes_versions": ["1.1.0"],
        "supported_filesystem_protocols": ["file", "http", "https"],
        "workflow_engine_versions": {"cwltool": {"workflow_engine_version": [_cwltool_version()]}},
        "default_workflow_engine_parameters": {},
        "auth_instructions_url": "https://example.org/auth",
        "tags": tags or {},
    }


def _cwltool_version() -> str:
    """The installed cwltool's version, from its dist-info (running ``cwltool --version`` costs
    seconds)."""
    try:
        venv = peer_bin("sapporo").parent
    except WesPeerMissing:
        return "unknown"
    found = sorted(venv.glob("lib/python*/site-packages/cwltool-*.dist-info"))
    return (
        found[-1].name.removeprefix("cwltool-").removesuffix(".dist-info") if found else "unknown"
    )


# The stock run_cwltool() runs cwltool's Docker image; this one runs the cwltool installed next to
# sapporo, with its scratch space inside the run directory (deleted with the run).
_LOCAL_RUN_CWLTOOL = """function run_cwltool() {
    local -a cmd_arr=(cwltool --outdir "${outputs_dir}"
        --tmpdir-prefix "${tmp_dir}/" --tmp-outdir-prefix "${tmp_dir}/")
    _append_engine_params cmd_arr
    cmd_arr+=("${wf_url}" "${wf_params}")
    _write_and_run cmd_arr
}
"""


def local_cwltool_run_sh(dest: Path) -> Path:
    """Write sapporo's own run script with ``run_cwltool`` replaced by the local cwltool.

    sapporo documents ``--run-sh`` as the place to adapt how engines run; only that function
    changes, so cancel, outputs and state handling stay sapporo's own.
    """
    site = subprocess.run(  # noqa: S603 - our own installed interpreter
        [
            peer_bin("sapporo") / "python",
            "-c",
            "import sapporo,os;print(os.path.dirname(sapporo.__file__))",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    stock = (Path(site) / "run.sh").read_text()
    patched, count = re.subn(
        r"^function run_cwltool\(\) \{\n.*?^\}\n", _LOCAL_RUN_CWLTOOL, stock, flags=re.S | re.M
    )
    if count != 1:
        raise RuntimeError("sapporo's run.sh has no run_cwltool() function to replace")
    dest.write_text(patched)
    dest.chmod(0o755)
    return dest


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class RealWes:
    """A running real WES server. ``api_url`` is where its WES API answers."""

    kind: PeerKind
    base_url: str
    url_prefix: str
    workdir: Path
    process: subprocess.Popen[bytes]
    log_path: Path
    service_info: dict[str, Any] | None = None
    _log: Any = field(default=None, repr=False)

    @property
    def api_url(self) -> str:
        return self.base_url + self.url_prefix

    @property
    def port(self) -> int:
        return int(self.base_url.rsplit(":", 1)[1])

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
        if self._log is not None:
            self._log.close()


def start_real_wes(
    kind: PeerKind,
    workdir: Path,
    *,
    url_prefix: str | None = None,
    service_info: dict[str, Any] | Path | None = None,
    run_sh: Path | None = None,
    extra_args: tuple[str, ...] = (),
) -> RealWes:
    """Start ``kind`` on a free loopback port with its state under ``workdir``; wait until ready.

    sapporo: ``url_prefix`` ("" or "/ga4gh/wes/v1"), ``service_info`` (a dict or a file; default
    :func:`cwl_service_info`), ``run_sh`` (default :func:`local_cwltool_run_sh`). wes-service
    takes neither (its prefix is always ``/ga4gh/wes/v1``).
    """
    bin_dir = peer_bin(kind)
    workdir.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = os.environ | {"PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    info: dict[str, Any] | None = None
    if kind == "sapporo":
        prefix = url_prefix if url_prefix is not None else ""
        info_file = workdir / "service-info.json"
        if isinstance(service_info, Path):
            info_file = service_info
            info = json.loads(service_info.read_text())
        else:
            info = service_info if service_info is not None else cwl_service_info()
            info_file.write_text(json.dumps(info))
        run_dir = workdir / "runs"
        run_dir.mkdir(exist_ok=True)  # sapporo needs it before it starts
        command = [
            str(bin_dir / "sapporo"),
            "--host", "127.0.0.1",
            "--port", str(port),
            "--run-dir", str(run_dir),
            "--service-info", str(info_file),
            "--run-sh", str(run_sh or local_cwltool_run_sh(workdir / "run.sh")),
            "--base-url", base_url + prefix,
            "--cancel-grace-seconds", "2",
            *(["--url-prefix", prefix] if prefix else []),
            *extra_args,
        ]  # fmt: skip
    else:
        if url_prefix not in (None, WES_PREFIX):
            raise ValueError(f"wes-service serves only under {WES_PREFIX}")
        prefix = WES_PREFIX
        launcher = (
            "import sys; from wes_service.wes_service_main import get_parser, setup; "
            "args = get_parser().parse_args(sys.argv[2:]); "
            "setup(args).run(host='127.0.0.1', port=int(sys.argv[1]))"
        )
        command = [str(bin_dir / "python"), "-c", launcher, str(port), *extra_args]
    log_path = workdir / f"{kind}.log"
    log = log_path.open("wb")
    process = subprocess.Popen(  # noqa: S603 - fixed arguments, our own installed servers
        command, cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    server = RealWes(kind, base_url, prefix, workdir, process, log_path, info, log)
    try:
        _wait_ready(server)
    except BaseException:
        server.stop()
        raise
    return server


def _wait_ready(server: RealWes) -> None:
    deadline = time.monotonic() + _START_TIMEOUT
    url = f"{server.api_url}/service-info"
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"{server.kind} exited at start:\n{server.log()[-3000:]}")
        try:
            # wes-service runs `cwl-runner --version` for every service-info: seconds, not ms.
            if httpx.get(url, timeout=20).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{server.kind} did not answer {url} in {_START_TIMEOUT:g} s")
