"""The node's configuration: what sapporo is started with, and what its service-info says.

``prepare`` writes, under ``<data>/config/``:

- ``service-info.json``: sapporo's service-info, trimmed to what runs here (CWL v1.2 on the local
  cwltool), with the panels the node holds and the workflow it runs in ``tags`` (the keys are
  documented in the README; ``fedimpute.reference_panels`` is the platform's contract);
- ``executable_workflows.json``: the one workflow URL sapporo accepts (so nothing else can run:
  the node runs tools without containers, so an arbitrary CWL document would be arbitrary code);
- ``run.sh``: sapporo's own run script from the installed package with only its
  ``run_cwltool`` function replaced by a call to this node's runner (sapporo's documented
  extension point), so every other part (states, cancel, outputs) stays sapporo's;
- ``node.json``: the node policy the runner enforces (panel locations, local input folders,
  limits).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import sys
from dataclasses import asdict, dataclass, field
from importlib import metadata, resources
from pathlib import Path
from typing import Any

PACKAGE_ROOT = Path(__file__).resolve().parents[2]  # imputation-node/
WORKFLOW_DIR = PACKAGE_ROOT / "workflow"
WORKFLOW_NAME = "fedimpute-imputation"
WORKFLOW_VERSION = "1.0.0"
WORKFLOW_FILE = "imputation.cwl"
WORKFLOW_ROUTE = f"/workflows/{WORKFLOW_NAME}/{WORKFLOW_VERSION}"
WES_PREFIX = "/ga4gh/wes/v1"
PANELS_TAG = "fedimpute.reference_panels"
WORKFLOWS_TAG = "fedimpute.workflows"
NODE_VERSION = "1.0.0"


@dataclass
class NodeSettings:
    """Everything an institution chooses when it starts a node (the CLI flags of ``serve``)."""

    data_dir: Path
    host: str = "127.0.0.1"
    port: int = 1122
    public_url: str = ""  # how clients reach the node; default http://host:port
    organization_name: str = "FedImpute imputation node"
    organization_url: str = "https://example.org"
    node_id: str = "org.fedimpute.imputation-node"
    contact_url: str = ""  # default: the organization's URL
    auth_config: Path | None = (
        None  # sapporo's auth_config.json (its built-in or external JWT auth)
    )
    auth_instructions_url: str = ""  # default: the organization's URL
    max_threads: int = 2
    max_memory_gb: int = 8
    download_timeout_seconds: float = 30.0  # no byte for this long: the input URL does not answer
    download_deadline_seconds: float = 1800.0  # one input may take this long in all
    max_input_bytes: int = 10 * 1024**3
    local_input_dirs: list[Path] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")

    @property
    def workflow_url(self) -> str:
        return f"{self.base_url}{WORKFLOW_ROUTE}/{WORKFLOW_FILE}"

    @property
    def config_dir(self) -> Path:
        return self.data_dir / "config"

    @property
    def run_dir(self) -> Path:
        return self.data_dir / "runs"

    @property
    def panels_dir(self) -> Path:
        return self.data_dir / "panels"


@dataclass(frozen=True)
class Policy:
    """What the runner enforces on each run (written to node.json by ``prepare``)."""

    workflow_url: str
    workflow_path: str
    panels: dict[str, str]  # location -> panel id
    local_input_dirs: list[str]
    beagle_jar: str
    max_threads: int
    max_memory_gb: int
    download_timeout_seconds: float
    download_deadline_seconds: float
    max_input_bytes: int

    @classmethod
    def load(cls, path: Path) -> Policy:
        return cls(**json.loads(path.read_text()))


BEAGLE_JAR = "/usr/share/beagle/beagle.jar"


def panel_entries(panels_dir: Path) -> list[dict[str, Any]]:
    """The contract's panel elements for every panel directory (one with a panel.json)."""
    entries = []
    for manifest_path in sorted(panels_dir.glob("*/panel.json")):
        manifest = json.loads(manifest_path.read_text())
        entries.append(
            {
                "id": manifest["id"],
                "name": manifest["name"],
                "version": manifest["version"],
                "build": manifest["build"],
                "populations": manifest["populations"],
                "samples": manifest["samples"],
                "chromosomes": manifest["chromosomes"],
                "location": manifest_path.parent.resolve().as_uri(),
            }
        )
    return entries


def workflow_descriptor(settings: NodeSettings) -> dict[str, Any]:
    """How to run the node's workflow: what a platform's workflow profile needs."""
    return {
        "name": WORKFLOW_NAME,
        "version": WORKFLOW_VERSION,
        "workflow_url": settings.workflow_url,
        "workflow_type": "CWL",
        "workflow_type_version": "v1.2",
        "workflow_engine": "cwltool",
        "inputs": {
            "target_vcfs": "File[]",
            "panel": "Directory",
            "build": "string",
            "population": "string",
            "r2_filter": "float",
            "output_prefix": "string",
            "threads": "int",
            "memory_gb": "int",
        },
        "outputs": ["imputed_vcfs", "qc_report_json", "qc_report_html", "imputation_stats"],
    }


def service_info(settings: NodeSettings, panels: list[dict[str, Any]]) -> dict[str, Any]:
    cwltool_version = metadata.version("cwltool")
    return {
        "id": settings.node_id,
        "name": "FedImpute imputation node (GA4GH WES)",
        "type": {"group": "org.ga4gh", "artifact": "wes", "version": "1.1.0"},
        "description": (
            "Genotype imputation (QC + Beagle 5.4) as a CWL v1.2 workflow, run by cwltool "
            f"behind sapporo. Runnable workflow: {settings.workflow_url}"
        ),
        "organization": {"name": settings.organization_name, "url": settings.organization_url},
        "contactUrl": settings.contact_url or settings.organization_url,
        "auth_instructions_url": settings.auth_instructions_url or settings.organization_url,
        "documentationUrl": settings.workflow_url,
        "version": NODE_VERSION,
        "environment": "production",
        "workflow_type_versions": {"CWL": {"workflow_type_version": ["v1.2"]}},
        "supported_wes_versions": ["1.1.0"],
        "supported_filesystem_protocols": ["http", "https", "file"],
        "workflow_engine_versions": {"cwltool": {"workflow_engine_version": [cwltool_version]}},
        "default_workflow_engine_parameters": {},
        "tags": {
            PANELS_TAG: json.dumps(panels, separators=(",", ":")),
            WORKFLOWS_TAG: json.dumps([workflow_descriptor(settings)], separators=(",", ":")),
        },
    }


RUN_CWLTOOL = re.compile(r"^function run_cwltool\(\) \{\n.*?^\}\n", re.MULTILINE | re.DOTALL)


def run_script(python: str, policy: Path) -> str:
    """Sapporo's installed run.sh with ``run_cwltool`` calling this node's runner."""
    stock = resources.files("sapporo").joinpath("run.sh").read_text()
    replacement = (
        "function run_cwltool() {\n"
        "    # imputation-node: the local cwltool (no containers) through the node's runner, which\n"
        "    # checks the run against the node's policy and fetches http(s) inputs with timeouts.\n"
        f"    local -a cmd_arr=({shlex.quote(python)} -m imputation_node.runner"
        f' --policy {shlex.quote(str(policy))} "${{run_dir}}")\n'
        "    _write_and_run cmd_arr\n"
        "}\n"
    )
    patched, count = RUN_CWLTOOL.subn(lambda _: replacement, stock)
    if count != 1:
        raise RuntimeError("sapporo's run.sh has no single run_cwltool function to replace")
    return patched


def prepare(settings: NodeSettings) -> dict[str, Path]:
    """Write the node's configuration files; return their paths (sapporo's flags)."""
    settings.config_dir.mkdir(parents=True, exist_ok=True)
    settings.run_dir.mkdir(parents=True, exist_ok=True)
    panels = panel_entries(settings.panels_dir)
    paths = {
        "service_info": settings.config_dir / "service-info.json",
        "executable_workflows": settings.config_dir / "executable_workflows.json",
        "run_sh": settings.config_dir / "run.sh",
        "policy": settings.config_dir / "node.json",
    }
    paths["service_info"].write_text(json.dumps(service_info(settings, panels), indent=2))
    paths["executable_workflows"].write_text(
        json.dumps({"workflows": [settings.workflow_url]}, indent=2)
    )
    paths["run_sh"].write_text(run_script(sys.executable, paths["policy"]))
    policy = Policy(
        workflow_url=settings.workflow_url,
        workflow_path=str(WORKFLOW_DIR / WORKFLOW_FILE),
        panels={p["location"]: p["id"] for p in panels},
        local_input_dirs=[str(d.resolve()) for d in settings.local_input_dirs],
        beagle_jar=BEAGLE_JAR,
        max_threads=settings.max_threads,
        max_memory_gb=settings.max_memory_gb,
        download_timeout_seconds=settings.download_timeout_seconds,
        download_deadline_seconds=settings.download_deadline_seconds,
        max_input_bytes=settings.max_input_bytes,
    )
    paths["policy"].write_text(json.dumps(asdict(policy), indent=2))
    return paths


def sapporo_environment(
    settings: NodeSettings, paths: dict[str, Path], path: str
) -> dict[str, str]:
    """Sapporo's settings as its SAPPORO_* variables, and a PATH that starts with this
    environment's bin folder (run.sh calls ``sapporo-cli`` by name)."""
    environment = {
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{path}",
        "SAPPORO_HOST": settings.host,
        "SAPPORO_PORT": str(settings.port),
        "SAPPORO_RUN_DIR": str(settings.run_dir),
        "SAPPORO_SERVICE_INFO": str(paths["service_info"]),
        "SAPPORO_EXECUTABLE_WORKFLOWS": str(paths["executable_workflows"]),
        "SAPPORO_RUN_SH": str(paths["run_sh"]),
        "SAPPORO_URL_PREFIX": WES_PREFIX,
        "SAPPORO_BASE_URL": f"{settings.base_url}{WES_PREFIX}",
    }
    if settings.auth_config is not None:
        environment["SAPPORO_AUTH_CONFIG"] = str(settings.auth_config.resolve())
    return environment
