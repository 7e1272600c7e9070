"""`python -m service_registry [serve|migrate|seed]`: serve on HOST:PORT (default 127.0.0.1:8002)."""

import sys

from fedimpute_shared.app import service_cli
from service_registry.config import Settings
from service_registry.main import MIGRATIONS_DIR, create_app
from service_registry.seed import seed_command


def main() -> int:
    return service_cli(Settings, create_app, MIGRATIONS_DIR, {"seed": seed_command})


if __name__ == "__main__":
    sys.exit(main())
