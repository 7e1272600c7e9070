"""Schemathesis against monitoring's own OpenAPI document, as an administrator and a
researcher: no 5xx, every status, content type and body as documented
(fedimpute_shared.testing.fuzz). user-service grants service tokens and the registry answers
its health summary (an empty one); the other watched services are down: every call to them
fails to connect, as in production, and monitoring must report it rather than fail."""

import uuid

import httpx
import respx

from fedimpute_shared.testing.fuzz import FuzzOptions, fuzz_app

from .conftest import REGISTRY, USER_SERVICE


async def test_fuzz_the_api(make_app, db, redis, admin, user_token):
    researcher = user_token(uuid.uuid4())
    options = FuzzOptions(known={"service": ["user-service", "file-manager"]})
    with respx.mock(assert_all_called=False) as mock:
        mock.route(host="127.0.0.1").pass_through()  # the token issuer's JWKS
        mock.post(f"{USER_SERVICE}/internal/service-tokens").respond(
            json={"access_token": "service-token", "token_type": "Bearer", "expires_in": 600}
        )
        mock.get(f"{REGISTRY}/internal/service-health").respond(json=[])
        mock.route().mock(side_effect=httpx.ConnectError("connection refused"))
        report = await fuzz_app(make_app(), {"admin": admin, "researcher": researcher}, options)
    print(report.summary())
    report.assert_clean()
