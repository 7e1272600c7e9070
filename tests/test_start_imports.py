"""What a service imports to start: only what serving needs. The heavy modules a serving
process used to load at start and rarely or never needs are imported where they are used
(docs/benchmarks.md, "Start-up time and idle memory"): each service's entry point is imported in
a fresh interpreter and must not have loaded them."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from fedimpute_shared.fleet import FLEET

# Alembic (with Mako and Pygments) is for `migrate` only; rich and Pygments come with httpx's
# command-line client; zxcvbn's word lists only when a password is chosen; numpy and pysam only
# in file-manager's validation child process; pyzipper (with pycryptodome) for job results.
NEVER_AT_START = [
    *("alembic", "mako", "pygments", "rich", "httpx._main", "zxcvbn", "numpy", "pysam"),
    *("pyzipper", "Cryptodome"),
]
# python-jose's jwt loads cryptography's OpenSSL bindings: at the first token, except in the
# services that need cryptography at start (user-service signs tokens with its key,
# job-processor opens its result-password box).
FIRST_TOKEN = ["jose.jwt", "cryptography.hazmat.bindings._rust"]
NEEDS_CRYPTOGRAPHY = {"user-service", "job-processor"}


def _loaded_at_start(package: str, names: list[str]) -> list[str]:
    script = (
        "import json, sys\n"
        f"import {package}.__main__\n"
        f"print(json.dumps([n for n in {names!r} if n in sys.modules and sys.modules[n]]))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120
    )
    loaded: list[str] = json.loads(result.stdout)
    return loaded


@pytest.mark.parametrize("service", [s for s in FLEET if s.installed], ids=lambda s: s.name)
def test_a_service_does_not_import_at_start_what_it_needs_later(service) -> None:
    lazy = NEVER_AT_START + ([] if service.name in NEEDS_CRYPTOGRAPHY else FIRST_TOKEN)
    assert _loaded_at_start(service.package, lazy) == []
