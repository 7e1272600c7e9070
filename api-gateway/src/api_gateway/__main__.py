"""`python -m api_gateway [serve|migrate]`: serve on HOST:PORT (default 127.0.0.1:8000).

The gateway has no database, so `migrate` does nothing (the fleet launcher runs it for every
service).
"""

import sys

import fedimpute_shared  # noqa: F401 (before httpx is imported: see its note on httpx's CLI)
from api_gateway.config import Settings
from api_gateway.main import create_app
from fedimpute_shared.app import service_cli


def main() -> int:
    return service_cli(Settings, create_app, None)


if __name__ == "__main__":
    sys.exit(main())
