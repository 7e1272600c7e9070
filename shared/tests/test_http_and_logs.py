"""Outbound client: request-id propagation, service tokens; logs: JSON and redaction."""

import json
import logging

import httpx
import respx
from pydantic import SecretStr

from fedimpute_shared.context import request_id_var
from fedimpute_shared.http import ServiceTokenAuth, ServiceTokenProvider, create_http_client
from fedimpute_shared.logs import JsonFormatter, RedactingFilter, redact


@respx.mock
async def test_request_id_is_propagated():
    route = respx.get("http://svc/x").respond(200)
    token = request_id_var.set("req-12345678")
    try:
        async with create_http_client() as client:
            await client.get("http://svc/x")
    finally:
        request_id_var.reset(token)
    assert route.calls.last.request.headers["X-Request-ID"] == "req-12345678"


def test_client_has_explicit_timeouts():
    client = create_http_client()
    assert client.timeout.connect == 3.0
    assert client.timeout.read == 10.0


@respx.mock
async def test_service_token_is_fetched_once_and_renewed_on_401():
    issued = iter(["tok-1", "tok-2"])
    token_route = respx.post("http://users/internal/service-tokens").mock(
        side_effect=lambda request: httpx.Response(
            200, json={"access_token": next(issued), "token_type": "Bearer", "expires_in": 300}
        )
    )
    seen = []

    def target(request):
        seen.append(request.headers["Authorization"])
        return httpx.Response(401 if len(seen) == 3 else 200)

    respx.get("http://registry/internal/x").mock(side_effect=target)
    async with create_http_client() as http:
        provider = ServiceTokenProvider("http://users", "job-processor", SecretStr("s"), http)
        async with create_http_client(
            auth=ServiceTokenAuth(provider, "service-registry")
        ) as client:
            for _ in range(3):
                await client.get("http://registry/internal/x")
    assert seen == ["Bearer tok-1", "Bearer tok-1", "Bearer tok-1", "Bearer tok-2"]
    assert token_route.call_count == 2
    body = json.loads(token_route.calls[0].request.content)
    assert body == {
        "client_id": "job-processor",
        "client_secret": "s",
        "audience": "service-registry",
    }


def test_redaction_masks_credentials():
    text = (
        "Authorization: Bearer abc.def.ghi password=hunter2 token=xyz "
        '{"client_secret": "s3"} eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln'
    )
    cleaned = redact(text)
    for secret in ("abc.def.ghi", "hunter2", "xyz", "s3", "eyJhbGciOiJSUzI1NiJ9"):
        assert secret not in cleaned


def test_json_formatter_includes_context_and_redacts():
    record = logging.makeLogRecord(
        {"msg": "login with password=%s", "args": ("hunter2",), "levelname": "INFO", "name": "t"}
    )
    RedactingFilter().filter(record)
    token = request_id_var.set("rid-00000001")
    try:
        line = json.loads(JsonFormatter("demo").format(record))
    finally:
        request_id_var.reset(token)
    assert line["service"] == "demo"
    assert line["request_id"] == "rid-00000001"
    assert "hunter2" not in line["message"]


def test_json_formatter_redacts_extra_fields_and_url_passwords():
    """Issue 10 item 7: ``extra`` fields were written raw (the settings dump at every start)."""
    record = logging.makeLogRecord(
        {
            "msg": "connecting to postgresql://app:hunter2-db@db:5432/x",
            "levelname": "INFO",
            "settings": {
                "database_url": "postgresql+asyncpg://app:hunter2-db@db:5432/x",
                "redis_url": "redis://:hunter2-redis@redis:6379/0",
                "nested": [{"client_secret": "hunter2-client"}],
                "port": 8001,
            },
        }
    )
    RedactingFilter().filter(record)
    line = JsonFormatter("svc").format(record)
    assert "hunter2" not in line
    entry = json.loads(line)
    assert entry["settings"]["database_url"] == "postgresql+asyncpg://app:[REDACTED]@db:5432/x"
    assert entry["settings"]["port"] == 8001
    assert entry["message"] == "connecting to postgresql://app:[REDACTED]@db:5432/x"
