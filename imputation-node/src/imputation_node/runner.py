"""What sapporo's run.sh runs for each run: the node's policy, the inputs, then cwltool.

``python -m imputation_node.runner --policy node.json RUN_DIR``:

1. checks the run against the node's policy: the workflow is the node's own; the panel is one of
   the node's panels; inputs are http(s) URLs (or files under the folders the node allows);
   threads and memory within the node's limits; Beagle's jar is the node's;
2. fetches every http(s) input into the run's folder with a connect/read timeout, an overall
   deadline and a size cap, so an input URL that does not answer fails the run with a message
   instead of hanging it (cwltool's own downloader has no timeout and keeps error pages as data);
3. runs the workflow with the local cwltool (no containers) on the fetched files.

Every problem ends the process with a non-zero code (sapporo then records EXECUTOR_ERROR) after an
``ERROR:`` line on stderr (the run log's ``stderr``) that says what to do; when cwltool fails, the
``ERROR:`` lines of the workflow's steps are repeated at the end as a summary.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx

from imputation_node.node import Policy

INPUT_ERROR = 2
MAX_TARGETS = 50  # more than one file per chromosome is never needed
OUTPUT_PREFIX = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
# Lines of the steps' logs that say why a run failed: the workflow's scripts ("ERROR: ..."),
# Beagle ("Error     :  ...") and the JVM (OutOfMemoryError).
STEP_ERROR = re.compile(r"^(ERROR: |Error\s+:  )|OutOfMemoryError")
MAX_REDIRECTS = 5
CHUNK = 1024 * 1024


class RunError(Exception):
    """A run that cannot go on, told as one line that says what to do."""


# ---------------------------------------------------------------------------- policy


def check_params(params: dict[str, Any], policy: Policy) -> None:
    """The run's parameters against the node's policy (RunError on the first problem)."""
    _check_panel(params.get("panel"), policy)
    _check_scalars(params, policy)
    _check_targets(params.get("target_vcfs"))


def _check_panel(panel: Any, policy: Policy) -> None:
    if not isinstance(panel, dict) or panel.get("class") != "Directory":
        raise RunError('panel must be {"class": "Directory", "location": <a panel location>}')
    location = str(panel.get("location") or panel.get("path") or "")
    if _as_uri(location) not in policy.panels:
        offered = ", ".join(f"{pid} ({loc})" for loc, pid in policy.panels.items()) or "none"
        raise RunError(
            f"panel {location!r} is not a panel of this node; its panels (service-info tags): "
            f"{offered}"
        )


def _check_scalars(params: dict[str, Any], policy: Policy) -> None:
    prefix = params.get("output_prefix", "imputed")
    if not isinstance(prefix, str) or not OUTPUT_PREFIX.match(prefix):
        raise RunError(
            "output_prefix must be a plain file name: letters, digits, '.', '_' and '-' "
            "(at most 100, starting with a letter or digit)"
        )
    if "beagle_jar" in params and params["beagle_jar"] != policy.beagle_jar:
        raise RunError("beagle_jar is set by the node and cannot be chosen by a run")
    for name, limit in (("threads", policy.max_threads), ("memory_gb", policy.max_memory_gb)):
        value = params.get(name, 1)
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= limit:
            raise RunError(f"{name} must be a whole number from 1 to {limit} on this node")


def _check_targets(targets: Any) -> None:
    if not isinstance(targets, list) or not targets:
        raise RunError('target_vcfs must be a non-empty list of {"class": "File", "location": ...}')
    if len(targets) > MAX_TARGETS:
        raise RunError(
            f"target_vcfs has {len(targets)} files; at most {MAX_TARGETS} (one per chromosome)"
        )
    for index, target in enumerate(targets):
        if not isinstance(target, dict) or target.get("class") != "File":
            raise RunError(f'target_vcfs[{index}] must be {{"class": "File", "location": ...}}')


def _as_uri(location: str) -> str:
    if location.startswith("file://"):
        return Path(unquote(urlsplit(location).path)).resolve().as_uri()
    if location.startswith("/"):
        return Path(location).resolve().as_uri()
    return location


# ---------------------------------------------------------------------------- inputs


def stage_target(target: dict[str, Any], index: int, inputs_dir: Path, policy: Policy) -> str:
    """A local file URI for the target: fetched if it is a URL, checked if it is a file."""
    location = str(target.get("location") or target.get("path") or "")
    scheme = urlsplit(location).scheme
    label = f"target_vcfs[{index}]"
    if scheme in ("http", "https"):
        folder = inputs_dir / str(index)
        folder.mkdir(parents=True, exist_ok=True)
        destination = folder / _file_name(location)
        fetch(location, destination, label, policy)
        return destination.resolve().as_uri()
    if scheme in ("file", ""):
        path = Path(unquote(urlsplit(location).path)).resolve()
        allowed = [Path(d) for d in policy.local_input_dirs]
        if not any(path.is_relative_to(d) for d in allowed):
            raise RunError(
                f"{label} is a file on the node outside the folders it accepts inputs from; "
                "give an http(s) URL the node can download"
            )
        if not path.is_file():
            raise RunError(f"{label}: no file {path} on the node")
        return path.as_uri()
    raise RunError(f"{label}: {scheme}: URLs are not supported; give an http(s) URL")


def _file_name(url: str) -> str:
    name = unquote(urlsplit(url).path.rsplit("/", 1)[-1])
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._")
    return name[:100] or "target.vcf.gz"


def _shown(url: str) -> str:
    """The URL without its query string (signed URLs carry their signature there)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


def fetch(url: str, destination: Path, label: str, policy: Policy) -> None:
    """GET ``url`` into ``destination``; every failure is a RunError naming the URL."""
    timeout = httpx.Timeout(policy.download_timeout_seconds)
    deadline = time.monotonic() + policy.download_deadline_seconds
    shown = _shown(url)
    started = time.monotonic()
    try:
        with (
            httpx.Client(
                timeout=timeout, follow_redirects=True, max_redirects=MAX_REDIRECTS
            ) as client,
            client.stream("GET", url) as response,
        ):
            if response.status_code >= 400:
                raise RunError(
                    f"{label}: {shown} answered {response.status_code} "
                    f"{response.reason_phrase}: check that the link is right and has not expired"
                )
            size = 0
            with destination.open("wb") as out:
                for chunk in response.iter_bytes(CHUNK):
                    size += len(chunk)
                    if size > policy.max_input_bytes:
                        raise RunError(
                            f"{label}: {shown} is larger than this node's limit of "
                            f"{policy.max_input_bytes:,} bytes per input"
                        )
                    if time.monotonic() > deadline:
                        raise RunError(
                            f"{label}: {shown} did not finish downloading within "
                            f"{policy.download_deadline_seconds:.0f} s"
                        )
                    out.write(chunk)
    except httpx.TimeoutException:
        raise RunError(
            f"{label}: {shown} did not answer within {policy.download_timeout_seconds:.0f} s: "
            "check that the server is up and the link is right"
        ) from None
    except httpx.TooManyRedirects:
        raise RunError(f"{label}: {shown} redirected more than {MAX_REDIRECTS} times") from None
    except httpx.HTTPError as exc:
        raise RunError(
            f"{label}: could not download {shown} ({type(exc).__name__}: {exc}): check that the "
            "server is up and the link is right"
        ) from None
    print(
        f"fetched {label} from {shown}: {size:,} bytes in {time.monotonic() - started:.1f} s",
        flush=True,
    )


# ---------------------------------------------------------------------------- the run


def cwltool_command(policy: Policy, run_dir: Path, params_path: Path, threads: int) -> list[str]:
    """cwltool on the node's workflow: local tools, steps side by side, a timestamped log.

    ``--parallel`` starts every step whose inputs are ready (the statistics beside the r² filter,
    the chromosomes of a run side by side) as far as the cores allow: cwltool counts each step's
    ``ResourceRequirement`` (Beagle: ``threads``) against ``--parallel-max`` cores, and refuses a
    step that asks for more than that, so the budget is never below the run's ``threads``.
    ``--timestamps`` dates every line of the run log, so the log shows where a run's time went.
    """
    tmp = run_dir / "tmp"
    tmp.mkdir(exist_ok=True)
    cores = max(len(os.sched_getaffinity(0)), threads)
    # The console script: `python -m cwltool` exits 0 even when the workflow fails.
    return [
        str(Path(sys.executable).with_name("cwltool")),
        "--no-container",
        "--disable-color",
        "--timestamps",
        "--parallel",
        "--parallel-max",
        str(cores),
        "--outdir",
        str(run_dir / "outputs"),
        "--tmpdir-prefix",
        f"{tmp}/",
        "--tmp-outdir-prefix",
        f"{tmp}/",
        policy.workflow_path,
        str(params_path),
    ]


def run_cwltool(command: list[str], policy: Policy) -> int:
    """Run cwltool, passing its log through and repeating the steps' error lines at the end."""
    errors: list[str] = []
    with subprocess.Popen(command, stderr=subprocess.PIPE, text=True, errors="replace") as process:
        assert process.stderr is not None
        for line in process.stderr:
            sys.stderr.write(line)
            if STEP_ERROR.search(line) and line not in errors:
                errors.append(line)
    if process.returncode != 0:
        if any("OutOfMemoryError" in line for line in errors):
            errors.append(
                "ERROR: Beagle ran out of memory: run again with a larger memory_gb "
                f"(at most {policy.max_memory_gb} on this node)\n"
            )
        summary = "".join(errors) or "ERROR: the workflow failed; the log above says where\n"
        sys.stderr.write("\nThe imputation failed:\n" + summary)
    return process.returncode


def run(policy: Policy, run_dir: Path) -> int:
    request = json.loads((run_dir / "run_request.json").read_text())
    if request.get("workflow_url") != policy.workflow_url:
        raise RunError(f"this node runs only {policy.workflow_url}")
    exe = run_dir / "exe"
    params = json.loads((exe / "workflow_params.json").read_text())
    if not isinstance(params, dict):
        raise RunError("workflow_params must be a JSON object")
    check_params(params, policy)
    inputs_dir = exe / "inputs"
    params["target_vcfs"] = [
        {"class": "File", "location": stage_target(t, i, inputs_dir, policy)}
        for i, t in enumerate(params["target_vcfs"])
    ]
    panel_location = str(params["panel"].get("location") or params["panel"].get("path"))
    params["panel"] = {"class": "Directory", "location": _as_uri(panel_location)}
    params["beagle_jar"] = policy.beagle_jar
    staged = exe / "staged_params.json"
    staged.write_text(json.dumps(params, indent=2))
    command = cwltool_command(policy, run_dir, staged, params.get("threads", 1))
    return run_cwltool(command, policy)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--policy", type=Path, required=True)
    parser.add_argument("run_dir", type=Path)
    args = parser.parse_args(argv)
    try:
        return run(Policy.load(args.policy), args.run_dir.resolve())
    except RunError as exc:
        print(f"ERROR: {exc}", file=sys.stderr, flush=True)
        return INPUT_ERROR


if __name__ == "__main__":
    sys.exit(main())
