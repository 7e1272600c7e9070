"""`python -m file_manager [serve|migrate]`: serve on HOST:PORT (default 127.0.0.1:8004)."""

import sys

from fedimpute_shared.app import service_cli
from file_manager.config import Settings
from file_manager.main import MIGRATIONS_DIR, create_app


def main() -> int:
    return service_cli(Settings, create_app, MIGRATIONS_DIR)


if __name__ == "__main__":
    sys.exit(main())
