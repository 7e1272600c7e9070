"""Schemathesis against the notification service's own OpenAPI document, as a researcher and
an administrator: no 5xx, every status, content type and body as documented
(fedimpute_shared.testing.fuzz)."""

import uuid

from fedimpute_shared.testing.fuzz import FuzzOptions, fuzz_app

from .test_api import notify


async def test_fuzz_the_api(make_app, client, db, users, user_token):
    me = users.add("ada")
    admin_id = users.add("root", admin=True)
    researcher, admin = user_token(me), user_token(admin_id, roles=("admin",))
    await notify(db, me, 2)
    mine = (await client.get("/notifications", headers=researcher)).json()["items"]
    hook = await client.post(
        "/notifications/webhooks", json={"url": "https://hooks.example.org/h"}, headers=researcher
    )
    assert hook.status_code == 201, hook.text
    options = FuzzOptions(
        known={
            "notification_id": [n["id"] for n in mine] + [str(uuid.uuid4())],
            "endpoint_id": [hook.json()["id"]],
            "event_type": ["file.validated", "job.completed"],
            "channel": ["email", "in_app"],
        },
    )
    report = await fuzz_app(make_app(), {"researcher": researcher, "admin": admin}, options)
    print(report.summary())
    report.assert_clean()
