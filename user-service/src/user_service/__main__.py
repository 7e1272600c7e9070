"""`python -m user_service [serve|migrate|create-admin|generate-signing-key|reencrypt-vault]`.

Serves on HOST:PORT (default 127.0.0.1:8001); see cli.py for the extra commands.
"""

import sys

from fedimpute_shared.app import service_cli
from user_service.cli import COMMANDS
from user_service.config import Settings
from user_service.main import MIGRATIONS_DIR, create_app


def main() -> int:
    return service_cli(Settings, create_app, MIGRATIONS_DIR, extra_commands=COMMANDS)


if __name__ == "__main__":
    sys.exit(main())
