"""An absent upstream is logged when it goes and when it comes back, not at every probe."""

import asyncio
import logging
import time

from api_gateway.upstreams import REMINDER_SECONDS, UpstreamPool
from fedimpute_shared.embedded import free_port
from fedimpute_shared.testing.client import app_client


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def messages(caplog, name):
    return [r.getMessage() for r in caplog.records if r.name == name]


def test_gone_once_a_reminder_at_most_then_back_once(caplog):
    caplog.set_level(logging.INFO, logger="api_gateway.upstreams")
    clock = Clock()
    pool = UpstreamPool(
        "monitoring", ["http://127.0.0.1:9"], max_failures=3, cooldown=15, clock=clock
    )
    [upstream] = pool.upstreams
    assert REMINDER_SECONDS == 600
    for _ in range(81):  # probed after every 15 s cooldown for 20 minutes: it fails each time
        for _ in range(3):
            pool.connect_failed(upstream)
        clock.now += 15
    logged = messages(caplog, "api_gateway.upstreams")
    assert len(logged) == 3  # gone, then a reminder at 10 and at 20 minutes
    assert "is unreachable" in logged[0]
    assert "still unreachable (for 10 min)" in logged[1]
    assert "still unreachable (for 20 min)" in logged[2]
    pool.connected(upstream)
    pool.connected(upstream)
    back = messages(caplog, "api_gateway.upstreams")[len(logged) :]
    assert back == [
        "upstream http://127.0.0.1:9 of monitoring is reachable again (it was away for 20 min)"
    ]


async def test_an_absent_service_is_logged_once_by_the_running_gateway(make_app, caplog):
    """The gateway probes a service that is not running many times (OpenAPI retries, every
    cooldown): one warning and one OpenAPI line, not one per probe."""
    app = make_app(
        monitoring_url=f"http://127.0.0.1:{free_port()}",
        upstream_max_failures=1,
        upstream_cooldown_seconds=0.05,
        openapi_retry_seconds=0.05,
    )
    root = logging.getLogger()
    root.addHandler(caplog.handler)  # the app's logging set-up replaced the root's handlers
    caplog.set_level(logging.INFO)
    try:
        async with app_client(app):
            deadline = time.monotonic() + 2
            while time.monotonic() < deadline:
                await asyncio.sleep(0.1)
    finally:
        root.removeHandler(caplog.handler)
    gone = [m for m in messages(caplog, "api_gateway.upstreams") if "of monitoring" in m]
    assert len(gone) == 1, gone
    assert "is unreachable" in gone[0]
    openapi = [m for m in messages(caplog, "api_gateway.openapi") if "monitoring" in m]
    assert openapi == ["no OpenAPI document from monitoring; retrying in the background"]
