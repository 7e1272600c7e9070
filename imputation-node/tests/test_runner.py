"""The runner's cwltool command: how the node's runs use the machine."""

from __future__ import annotations

import os
from pathlib import Path

from imputation_node.node import Policy
from imputation_node.runner import cwltool_command


def _policy() -> Policy:
    return Policy(
        workflow_url="http://node/workflows/imputation.cwl",
        workflow_path="/node/workflow/imputation.cwl",
        panels={},
        local_input_dirs=[],
        beagle_jar="/usr/share/beagle/beagle.jar",
        max_threads=64,
        max_memory_gb=8,
        download_timeout_seconds=30,
        download_deadline_seconds=1800,
        max_input_bytes=1,
    )


def _option(command: list[str], name: str) -> str:
    return command[command.index(name) + 1]


def test_steps_run_side_by_side_within_the_cores_of_the_node(tmp_path: Path):
    command = cwltool_command(_policy(), tmp_path, tmp_path / "params.json", threads=1)
    assert "--parallel" in command
    assert "--timestamps" in command
    assert _option(command, "--parallel-max") == str(len(os.sched_getaffinity(0)))
    assert command[-2:] == ["/node/workflow/imputation.cwl", str(tmp_path / "params.json")]


def test_a_run_may_ask_for_more_threads_than_the_node_has_cores(tmp_path: Path):
    """cwltool refuses a step that asks for more cores than its budget: the budget grows."""
    threads = len(os.sched_getaffinity(0)) + 3
    command = cwltool_command(_policy(), tmp_path, tmp_path / "params.json", threads=threads)
    assert _option(command, "--parallel-max") == str(threads)
