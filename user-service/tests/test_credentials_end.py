"""Issue 10 item 4: a new password (reset or change) leaves no API token and no other one-time
token of the account usable; an email change voids outstanding reset links."""

from .conftest import PASSWORD, emailed_token, login, register, service_auth

NEW_PASSWORD = "Cobalt-meadow-whispers-58"
RESET = "user.password_reset_requested"
VERIFY = "user.email_verification_requested"


async def _api_token(client, auth, name="script"):
    body = {"name": name, "scopes": ["files:read"]}
    response = await client.post("/users/me/api-tokens", json=body, headers=auth)
    assert response.status_code == 201, response.text
    return response.json()


async def _exchange(client, token):
    return await client.post(
        "/internal/api-tokens/exchange",
        json={"token": token},
        headers=await service_auth(client, "api-gateway"),
    )


async def _reset(client, token, password=NEW_PASSWORD):
    return await client.post(
        "/auth/password-reset/confirm", json={"token": token, "new_password": password}
    )


async def test_a_reset_revokes_every_api_token_and_one_time_token(client, db, redis, settings):
    await register(client)
    auth = {"Authorization": f"Bearer {(await login(client))['access_token']}"}
    created = await _api_token(client, auth)
    verification = await emailed_token(db, VERIFY)  # sent at registration, not used yet
    pubsub = redis.pubsub()
    await pubsub.subscribe(settings.api_token_revoked_channel)
    await pubsub.get_message(timeout=1)
    await client.post("/auth/password-reset", json={"email": "ada@example.org"})
    assert (await _reset(client, await emailed_token(db, RESET))).status_code == 204
    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=2)
    await pubsub.aclose()
    assert message is not None
    assert message["data"].decode() == created["id"]
    assert (await _exchange(client, created["token"])).status_code == 422
    verified = await client.post("/auth/verify-email/confirm", json={"token": verification})
    assert verified.status_code == 400


async def test_a_password_change_revokes_api_tokens_and_reset_links(client, db):
    await register(client)
    auth = {"Authorization": f"Bearer {(await login(client))['access_token']}"}
    created = await _api_token(client, auth)
    await client.post("/auth/password-reset", json={"email": "ada@example.org"})
    reset = await emailed_token(db, RESET)
    changed = await client.post(
        "/users/me/password",
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
        headers=auth,
    )
    assert changed.status_code == 204, changed.text
    assert (await _exchange(client, created["token"])).status_code == 422
    assert (await _reset(client, reset, NEW_PASSWORD + "-x")).status_code == 400
    await login(client, "ada", NEW_PASSWORD)
    # A token created after the change works.
    auth = {"Authorization": f"Bearer {(await login(client, 'ada', NEW_PASSWORD))['access_token']}"}
    fresh = await _api_token(client, auth, name="after")
    assert (await _exchange(client, fresh["token"])).status_code == 200


async def test_an_email_change_voids_outstanding_reset_links(client, db):
    await register(client)
    auth = {"Authorization": f"Bearer {(await login(client))['access_token']}"}
    await client.post("/auth/password-reset", json={"email": "ada@example.org"})
    reset = await emailed_token(db, RESET)
    changed = await client.put(
        "/users/me/email",
        json={"current_password": PASSWORD, "new_email": "lovelace@example.org"},
        headers=auth,
    )
    assert changed.status_code == 200, changed.text
    assert (await _reset(client, reset)).status_code == 400
    await login(client)  # the password is unchanged
