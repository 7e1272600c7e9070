"""Cross-service tests: the whole fleet started by the real launcher (`make up`) as processes,
on offset ports with its own state directory, driven only over HTTP as a user would."""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Another checkout may run its own fleet tests at the same time: give it another offset.
PORT_OFFSET = int(os.environ.get("TEST_FLEET_PORT_OFFSET", "20000"))


@dataclass
class RunningFleet:
    var: Path
    lines: list[str] = field(default_factory=list)

    def url(self, base_port: int) -> str:
        return f"http://127.0.0.1:{base_port + PORT_OFFSET}"

    @property
    def gateway(self) -> str:
        return self.url(8000)

    @property
    def admin_password(self) -> str:
        return str(json.loads((self.var / "secrets.json").read_text())["admin_password"])

    @property
    def output(self) -> str:
        return "".join(self.lines)

    @property
    def redis_url(self) -> str:
        """The fleet's Redis, as its summary prints it (tests add events to its stream)."""
        line = next(ln for ln in self.lines if ln.startswith("Redis:"))
        return line.split(None, 1)[1].strip()

    @property
    def mail_dir(self) -> Path:
        """Where the fleet's SMTP sink writes every email it receives (a Maildir)."""
        return self.var / "mail"


@pytest.fixture(scope="session")
def fleet() -> Iterator[RunningFleet]:
    # Outside pytest's temporary root: as root, the embedded Postgres runs as another user that
    # must traverse the path, and every pytest session (other checkouts' included) resets
    # /tmp/pytest-of-root to mode 0700.
    base = Path(tempfile.mkdtemp(prefix="fedimpute-fleet-"))
    base.chmod(0o755)
    var = base / "var"
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env |= {
        "FLEET_VAR_DIR": str(var),
        "FLEET_PORT_OFFSET": str(PORT_OFFSET),
        # The tests are the gateway's "proxy": they may name a client address (X-Forwarded-For),
        # so a brute-force test has its own rate-limit budget and does not starve the others.
        "TRUSTED_PROXIES": "127.0.0.1/32",
        # monitoring's rounds, short so an alert is raised and resolved within a test
        "FLEET_POLL_SECONDS": "2",
        "METRICS_SCRAPE_SECONDS": "3",
        "REGISTRY_SYNC_SECONDS": "3",
        "ALERT_EVAL_SECONDS": "1",
        "ALERT_STARTUP_GRACE_SECONDS": "0",
        "STATUS_CACHE_SECONDS": "0",
        # the summary comes without waiting for the demo jobs: a test watches them finish
        "FLEET_DEMO_JOBS_WAIT_SECONDS": "0",
    }
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "scripts" / "fleet.py"), "up"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    running = RunningFleet(var)
    ready: queue.Queue[bool] = queue.Queue()

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            running.lines.append(line)
            if "FedImpute is up" in line:
                ready.put(True)
        ready.put(False)

    pumper = threading.Thread(target=pump, daemon=True)
    pumper.start()
    try:
        if not ready.get(timeout=900):  # a loaded machine: minutes to migrate and start
            pytest.fail("the fleet did not start:\n" + running.output[-5000:])
        time.sleep(0.5)  # the summary is printed right after the last line we waited for
        yield running
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        pumper.join(timeout=10)
        if process.stdout is not None:
            process.stdout.close()
        shutil.rmtree(base, ignore_errors=True)
