"""Schemathesis against user-service's own OpenAPI document, as an administrator and a
researcher: no 5xx, every status, content type and body as documented
(fedimpute_shared.testing.fuzz)."""

from fedimpute_shared.testing.fuzz import FuzzOptions, fuzz_app


async def test_fuzz_the_api(make_app, admin_auth, user_auth, user_tokens):
    options = FuzzOptions(known={"user_id": [user_tokens["user_id"]]})
    # A new app (any override builds one): the session's default app is already started.
    app = make_app(log_json=False)
    report = await fuzz_app(app, {"admin": admin_auth, "researcher": user_auth}, options)
    print(report.summary())
    report.assert_clean()
