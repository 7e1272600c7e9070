"""`python -m notification_service [serve|migrate|generate-delivery-key]`: serve on HOST:PORT
(default 127.0.0.1:8005), apply the migrations, or print a new delivery key pair."""

import sys

from fedimpute_shared.app import service_cli
from fedimpute_shared.sealed import generate_keypair
from notification_service.config import Settings
from notification_service.main import MIGRATIONS_DIR, create_app


def generate_delivery_key(settings: Settings, argv: list[str]) -> int:
    """A new X25519 pair: the private half for notification, the public one for user-service."""
    private, public = generate_keypair()
    print(f"DELIVERY_PRIVATE_KEY={private}")
    print(f"NOTIFICATION_DELIVERY_PUBLIC_KEY={public}")
    return 0


def main() -> int:
    return service_cli(
        Settings,
        create_app,
        MIGRATIONS_DIR,
        extra_commands={"generate-delivery-key": generate_delivery_key},
    )


if __name__ == "__main__":
    sys.exit(main())
