"""`python -m service_registry`: serve the API on ``HOST:PORT`` (default 127.0.0.1:8002)."""

from fedimpute_shared.app import serve
from service_registry.config import Settings
from service_registry.main import create_app


def main() -> None:
    settings = Settings()
    serve(create_app(settings), settings)


if __name__ == "__main__":
    main()
