"""The launcher (`make up`) as a newcomer meets it when something is wrong: a port it needs is
taken, a service exits during start, the whole fleet is killed with kill -9. Each test runs the
real `scripts/fleet.py up` as a process, on its own ports and state directory."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from fedimpute_shared.fleet import FLEET

from .conftest import PORT_OFFSET, ROOT

pytestmark = pytest.mark.fleet

LAUNCHER = [sys.executable, str(ROOT / "scripts" / "fleet.py"), "up"]
# Beside the session fleet of conftest (PORT_OFFSET), each test on its own ports.
TAKEN_OFFSET = PORT_OFFSET + 300
DYING_OFFSET = PORT_OFFSET + 400
INTERRUPT_OFFSET = PORT_OFFSET + 600
FLEET_PORTS = (8000, 8001, 8002, 8004, 8005, 8101, 8102, 8103, 8125)
# What a first start says before migrating every service's database (the fleet table's order).
MIGRATING_ALL = "migrating: " + ", ".join(s.name for s in FLEET if s.database) + "\n"


@pytest.fixture
def var() -> Iterator[Path]:
    """A state directory outside pytest's own temporary root: as root, the embedded Postgres
    runs as another user that must traverse the path, and every pytest session (other
    checkouts' included) resets /tmp/pytest-of-root to mode 0700."""
    base = Path(tempfile.mkdtemp(prefix="fedimpute-launcher-"))
    base.chmod(0o755)
    yield base / "var"
    shutil.rmtree(base, ignore_errors=True)


def launcher_env(var: Path, offset: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    # The summary without waiting for the demo jobs (a start would wait up to minutes for them).
    return env | {
        "FLEET_VAR_DIR": str(var),
        "FLEET_PORT_OFFSET": str(offset),
        "FLEET_DEMO_JOBS_WAIT_SECONDS": "0",
    }


def run_launcher(var: Path, offset: int, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        LAUNCHER,
        env=launcher_env(var, offset),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_a_taken_port_is_named_with_its_process_and_nothing_starts(var):
    port = 8001 + TAKEN_OFFSET
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        started = time.monotonic()
        result = run_launcher(var, TAKEN_OFFSET, timeout=60)
    out = result.stdout + result.stderr
    assert result.returncode == 1, out
    assert time.monotonic() - started < 30  # refused before starting Postgres or anything else
    assert f"127.0.0.1:{port} (for user-service) is in use by pid {os.getpid()}" in result.stderr
    assert f"FLEET_PORT_OFFSET={TAKEN_OFFSET + 1000}" in result.stderr
    assert "Traceback" not in out
    assert not (var / "pgdata").exists()


def test_a_service_exiting_at_start_is_named_with_its_last_lines_and_the_rest_stop(var):
    """file-manager cannot create its storage (a plain file is where its folder should be): the
    launcher says which service exited, shows its last lines, stops everything, exits 1."""
    var.mkdir()
    (var / "files").write_text("not a folder")
    result = run_launcher(var, DYING_OFFSET, timeout=400)
    out = result.stdout + result.stderr
    assert result.returncode == 1, out[-3000:]
    message = result.stderr.split("make up: ", 1)[1]
    assert message.startswith("file-manager exited during start-up (exit code "), message
    assert "Its last log lines:" in message
    assert "Error" in message.split("Its last log lines:", 1)[1]  # the service's own error
    assert 'scripts/fleet.py", line' not in out  # no traceback of the launcher itself
    assert "stopped." in result.stdout
    assert "FedImpute is up" not in out
    for base in FLEET_PORTS:
        assert not _listening(base + DYING_OFFSET), f"port {base + DYING_OFFSET} still served"


def test_ctrl_c_during_start_up_stops_everything_started_so_far(var):
    """Ctrl-C while the services start (before the summary) stops them all, not only once the
    whole start is over; no process of the fleet is left behind."""
    launch = Launch(var, INTERRUPT_OFFSET)
    assert launch.process.stdout is not None
    try:
        for line in launch.process.stdout:
            launch.lines.append(line)
            if "mail-sink |" in line:  # processes are running, the start is not over
                break
        launch.process.send_signal(signal.SIGINT)
        launch.lines += launch.process.stdout.readlines()
        assert launch.process.wait(timeout=120) == 0
    finally:
        launch.stop()
    out = "".join(launch.lines)
    assert "interrupted during start-up" in out
    assert "FedImpute is up" not in out
    assert 'scripts/fleet.py", line' not in out  # no traceback of the launcher itself
    for base in FLEET_PORTS:
        assert not _listening(base + INTERRUPT_OFFSET), f"port {base + INTERRUPT_OFFSET} served"


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


# ---------------------------------------------------------------------------- kill -9

RESTART_OFFSET = PORT_OFFSET + 500


class Launch:
    """One `make up` in the background, read line by line until its summary."""

    def __init__(self, var: Path, offset: int) -> None:
        self.process = subprocess.Popen(
            LAUNCHER,
            env=launcher_env(var, offset),
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []

    def wait_up(self, within: float = 900) -> str:
        assert self.process.stdout is not None
        deadline = time.monotonic() + within
        for line in self.process.stdout:
            self.lines.append(line)
            if line.startswith("Press Ctrl-C"):
                return "".join(self.lines)
            if time.monotonic() > deadline:
                break
        pytest.fail("the fleet did not start:\n" + "".join(self.lines)[-5000:])

    def stop(self) -> None:
        if self.process.poll() is None:
            children = psutil.Process(self.process.pid).children(recursive=True)
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=120)
            except subprocess.TimeoutExpired:
                # its services run in their own sessions: leave none behind
                for child in [psutil.Process(self.process.pid), *children]:
                    with contextlib.suppress(psutil.NoSuchProcess):
                        child.kill()
                self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()


def kill_9_everything(launcher: subprocess.Popen[str], pgdata: Path) -> None:
    """SIGKILL at once the launcher, every process it started (each service runs in its own
    session, so a process group would miss them) and the embedded Postgres with its backends."""
    victims = [psutil.Process(launcher.pid)]
    victims += victims[0].children(recursive=True)
    postmaster = int((pgdata / "postmaster.pid").read_text().split("\n", 1)[0])
    with_children = psutil.Process(postmaster)
    victims += [with_children, *with_children.children(recursive=True)]
    for victim in victims:
        with contextlib.suppress(psutil.NoSuchProcess):
            victim.kill()
    psutil.wait_procs(victims, timeout=30)
    launcher.wait(timeout=30)


def test_kill_9_of_the_whole_fleet_then_make_up_keeps_every_piece_of_data(var):
    """Everything killed at once (no clean stop): the next `make up` on the same state comes
    back with the accounts, files (same bytes), demo jobs (not submitted again) and
    registrations; the sandbox service someone soft-deleted meanwhile is restored and the
    summary shows what the registry holds."""
    gateway = f"http://127.0.0.1:{8000 + RESTART_OFFSET}"
    first = Launch(var, RESTART_OFFSET)
    try:
        first.wait_up()
        assert MIGRATING_ALL in first.lines, "".join(first.lines)[-3000:]
        with httpx.Client(base_url=gateway, timeout=30) as api:
            researcher = _login(api, var, "researcher")
            files = api.get("/api/files", headers=researcher).json()["items"]
            # the uploads: the demo jobs' results come when they finish (the start does not wait)
            before = {f["filename"]: (f["id"], f["status"]) for f in files if f["job_id"] is None}
            valid_id = before["demo_chr20_hg38.vcf.gz"][0]
            jobs = api.get("/api/jobs", headers=researcher).json()["items"]
            demo_jobs = {j["name"]: j["id"] for j in jobs}
            content = api.get(f"/api/files/{valid_id}/content", headers=researcher).content
            admin = _login(api, var, "admin")
            deleted = api.delete("/api/services/sandbox-wes", headers=admin)
            assert deleted.status_code == 204, deleted.text
            listed = api.get("/api/services", headers=admin).json()["items"]
            assert "sandbox-wes" not in {s["slug"] for s in listed}
        kill_9_everything(first.process, var / "pgdata")
    finally:
        first.stop()
    assert len(before) == 3
    assert sorted(demo_jobs) == ["demo-sandbox-michigan", "demo-sandbox-wes"]
    second = Launch(var, RESTART_OFFSET)
    try:
        summary = second.wait_up()
        # every database was left at its head: no `migrate` process this time
        assert "every database is at its migration head\n" in second.lines, summary
        assert f"sandbox-wes            http://127.0.0.1:{8102 + RESTART_OFFSET}  " in summary
        # the registry lets a soft-deleted slug be registered again: the launcher re-creates it
        assert "sandbox-wes" in summary.split("In the service registry now", 1)[1]
        with httpx.Client(base_url=gateway, timeout=30) as api:
            researcher = _login(api, var, "researcher")
            files = api.get("/api/files", headers=researcher).json()["items"]
            uploads = {f["filename"]: (f["id"], f["status"]) for f in files if f["job_id"] is None}
            assert uploads == before
            again = api.get(f"/api/files/{valid_id}/content", headers=researcher)
            assert again.content == content
            # the demo jobs were found by name: none submitted again
            jobs = api.get("/api/jobs", headers=researcher).json()["items"]
            assert {j["name"]: j["id"] for j in jobs} == demo_jobs
            admin = _login(api, var, "admin")
            listed = api.get("/api/services", headers=admin).json()["items"]
            assert {s["slug"] for s in listed} >= {
                "sandbox-michigan",
                "sandbox-wes",
                "sandbox-starter-kit",
            }
    finally:
        second.stop()


def _login(api: httpx.Client, var: Path, username: str) -> dict[str, str]:
    keys = json.loads((var / "secrets.json").read_text())
    password = keys["admin_password" if username == "admin" else "researcher_password"]
    response = api.post("/api/auth/login", json={"login": username, "password": password})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}
