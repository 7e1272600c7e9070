"""`python -m monitoring_service [serve|migrate]`: serve on HOST:PORT (default 127.0.0.1:8006),
or apply the migrations."""

import sys

from fedimpute_shared.app import service_cli
from monitoring_service.config import Settings
from monitoring_service.main import MIGRATIONS_DIR, create_app


def main() -> int:
    return service_cli(Settings, create_app, MIGRATIONS_DIR)


if __name__ == "__main__":
    sys.exit(main())
