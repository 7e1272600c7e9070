"""Every bad input of the issue, through the node: EXECUTOR_ERROR and a message the user can act
on in the run log (``run_log.stderr``), never a hang. All runs are submitted at once, then read.

Variants that take the same path through the QC step (a plain-text target besides a plain-gzip
one, a `build` input that is not the panel's, fewer samples than `min_samples`) are tested on the
step itself in test_qc.py, since each run through the node costs a cwltool start."""

from __future__ import annotations

import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from .conftest import Node
from .targets import Target


@dataclass(frozen=True)
class Case:
    target: Callable[[Target, Path], Target | None]  # None: the clean target
    message: str
    location: str = "inbox"  # inbox (a file on the node) or http (served) or a literal URL
    extra: tuple[tuple[str, Any], ...] = ()
    compression: str = "bgzip"


def refused_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/chr20.vcf.gz"


CASES = {
    "target on another build": Case(
        lambda t, _: t.renamed("20", 63_025_520),
        "bad.vcf.gz is on hg19 (##contig 20 length 63,025,520) but panel sim-ooa-chr20 is on hg38 "
        "(chr20 length 64,444,167): lift the target over to hg38 or choose a hg19 panel",
    ),
    "target on another chromosome": Case(
        lambda t, _: t.renamed("chr21", 46_709_983),
        "the target is on chromosome chr21 but panel sim-ooa-chr20 (hg38) covers chr20 only",
    ),
    "no overlap with the panel": Case(
        lambda t, _: t.shifted(5_000_000),
        "no overlap with the panel: none of the 320 sites of bad.vcf.gz (chr20:40,",
    ),
    "unsorted": Case(lambda t, _: t.unsorted(), "bad.vcf.gz is not sorted by position"),
    "unindexable (plain gzip)": Case(
        lambda t, _: t,
        "bad.vcf.gz is compressed with plain gzip, not bgzip, so it cannot be indexed",
        compression="gzip",
    ),
    "no samples": Case(
        lambda t, _: t.samples(0), "bad.vcf.gz has 0 sample(s); imputation needs at least 1"
    ),
    "input URL answers 404": Case(
        lambda t, _: None,
        "target_vcfs[0]: {base}/missing.vcf.gz answered 404 File not found",
        location="http-missing",
    ),
    "input URL refuses connections": Case(
        lambda t, _: None,
        "target_vcfs[0]: could not download {url} (ConnectError",
        location="refused",
    ),
    "input URL never answers": Case(
        lambda t, _: None, "target_vcfs[0]: {url} did not answer within 3 s", location="silent"
    ),
    "panel not on the node": Case(
        lambda t, _: None,
        "panel 'file:///etc' is not a panel of this node",
        extra=(("panel", {"class": "Directory", "location": "file:///etc"}),),
    ),
    "file outside the node's input folders": Case(
        lambda t, _: None,
        "target_vcfs[0] is a file on the node outside the folders it accepts inputs from",
        location="file:///etc/hostname",
    ),
    "output prefix that is a path": Case(
        lambda t, _: None,
        "output_prefix must be a plain file name",
        extra=(("output_prefix", "../../../etc/cron.d/x"),),
    ),
    "Beagle's jar chosen by the run": Case(
        lambda t, _: None, "beagle_jar is set by the node", extra=(("beagle_jar", "/tmp/x.jar"),)
    ),
}


@pytest.fixture(scope="module")
def failed_runs(node: Node, file_server, silent_server) -> dict[str, tuple[dict[str, Any], str]]:
    base, _served = file_server
    clean = Target.read(node.heldout / "target.chr20.vcf.gz")
    submitted = {}
    for index, (name, case) in enumerate(CASES.items()):
        folder = node.inbox / str(index)
        folder.mkdir()
        target = case.target(clean, folder)
        path = folder / "bad.vcf.gz"
        (target or clean).write(path, case.compression)
        url = {
            "inbox": path.as_uri(),
            "http-missing": f"{base}/missing.vcf.gz",
            "refused": refused_url(),
            "silent": silent_server,
        }.get(case.location, case.location)
        message = case.message.format(base=base, url=url)
        submitted[name] = (node.run_id(node.params([url], **dict(case.extra))), message)
    return {
        name: (node.wait(run_id, within=300), message)
        for name, (run_id, message) in submitted.items()
    }


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_ends_the_run_with_executor_error_and_says_what_to_do(failed_runs, name):
    log, message = failed_runs[name]
    assert log["state"] == "EXECUTOR_ERROR"
    stderr = log["run_log"]["stderr"]
    assert message in stderr, stderr[-2000:]
    assert log["run_log"]["exit_code"] != 0
    assert not log["outputs"]
