"""`make up` end to end: the launcher starts the fleet from scratch (embedded Postgres and
Redis, databases, migrations, services, simulators), registers the simulators through the real
API, and everything answers. Runs on offset ports with its own state directory."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.fleet


def test_launcher_brings_up_a_working_fleet(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env |= {"FLEET_VAR_DIR": str(tmp_path / "var"), "FLEET_PORT_OFFSET": "20000"}
    run = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "fleet.py"), "up", "--check"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    out = run.stdout + run.stderr
    assert run.returncode == 0, out[-4000:]
    assert "FedImpute is up" in out
    # the simulators were registered with their real panel lists, through the API as the admin
    assert "sandbox-michigan       http://127.0.0.1:28101  panels: " in out
    assert "h3africa-v6hc-s" in out
    assert "sandbox-starter-kit    http://127.0.0.1:28103  panels: nextflow-21.04.0, wdl-1.0" in out
    assert "stopped." in out
    # secrets were generated for this machine, outside the repository
    assert (tmp_path / "var" / "secrets.json").exists()
