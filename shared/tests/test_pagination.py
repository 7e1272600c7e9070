"""Keyset pagination over a real table, and cursors that cannot be forged."""

import uuid

import pytest

from fedimpute_shared.pagination import CursorCodec
from fedimpute_shared.problems import BadRequest


async def _create(client, admin, names):
    for name in names:
        assert (
            await client.post("/widgets", json={"name": name}, headers=admin)
        ).status_code == 201


async def test_pages_cover_every_row_once_in_order(client, token_issuer):
    admin = {"Authorization": "Bearer " + token_issuer.access_token(roles=["admin"])}
    names = [f"w{i:02d}" for i in range(7)]
    await _create(client, admin, reversed(names))
    seen, cursor = [], None
    while True:
        params = {"limit": 3} | ({"cursor": cursor} if cursor else {})
        page = (await client.get("/widgets", params=params, headers=admin)).json()
        seen += [item["name"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == names


async def test_tampered_cursor_is_400(client, token_issuer):
    admin = {"Authorization": "Bearer " + token_issuer.access_token(roles=["admin"])}
    await _create(client, admin, ["a", "b", "c"])
    cursor = (await client.get("/widgets", params={"limit": 1}, headers=admin)).json()[
        "next_cursor"
    ]
    payload, signature = cursor.split(".")
    forged = CursorCodec("another-secret").encode(["zzz", "00000000-0000-0000-0000-000000000000"])
    for bad in (payload + "x." + signature, forged, "garbage", "a.b.c"):
        response = await client.get("/widgets", params={"cursor": bad}, headers=admin)
        assert response.status_code == 400, bad
        assert response.headers["content-type"] == "application/problem+json"


async def test_signed_cursor_with_values_of_the_wrong_type_is_400(client, token_issuer, settings):
    """A cursor signed with the right key but holding values that do not fit the sort columns
    (an old cursor after a schema change, say) is a bad request, not a server error."""
    admin = {"Authorization": "Bearer " + token_issuer.access_token(roles=["admin"])}
    await _create(client, admin, ["a", "b"])
    codec = CursorCodec(settings.cursor_secret.get_secret_value())
    for values in (["a", "not-a-uuid"], ["a", ["a", "list"]], [{"a": 1}, str(uuid.uuid4())]):
        response = await client.get(
            "/widgets", params={"cursor": codec.encode(values)}, headers=admin
        )
        assert response.status_code == 400, values
        assert "cursor is malformed" in response.json()["detail"]


async def test_limit_bounds_are_validated(client, token_issuer):
    admin = {"Authorization": "Bearer " + token_issuer.access_token(roles=["admin"])}
    assert (await client.get("/widgets", params={"limit": 0}, headers=admin)).status_code == 422
    assert (await client.get("/widgets", params={"limit": 1000}, headers=admin)).status_code == 422


def test_codec_round_trip_and_signature():
    codec = CursorCodec("s3cret")
    assert codec.decode(codec.encode(["x", 1])) == ["x", 1]
    with pytest.raises(BadRequest):
        CursorCodec("other").decode(codec.encode(["x", 1]))


async def test_plain_rows_page_like_entities(client, token_issuer, demo_db_url):
    """``plain_rows=True`` (read-only listings): the same rows, pages and cursors as ORM
    objects, as plain rows with the same attribute names and converted values."""
    from sqlalchemy import select

    from fedimpute_shared.db import create_engine, create_sessionmaker
    from fedimpute_shared.pagination import PageParams, paginate

    from .conftest import Widget

    admin = {"Authorization": "Bearer " + token_issuer.access_token(roles=["admin"])}
    await _create(client, admin, [f"plain-{i}" for i in range(5)])
    codec = CursorCodec("secret")
    order = [Widget.name, Widget.id]
    stmt = select(Widget).where(Widget.name.like("plain-%"))
    engine = create_engine(demo_db_url, pool_size=1)
    try:
        async with create_sessionmaker(engine)() as session:
            pages = {}
            for plain in (False, True):
                seen, cursor = [], None
                while True:
                    params = PageParams(limit=2, cursor=cursor)
                    rows, cursor = await paginate(
                        session, stmt, order_by=order, params=params, codec=codec, plain_rows=plain
                    )
                    seen += [(r.name, r.id, r.created_at) for r in rows]
                    if cursor is None:
                        break
                pages[plain] = seen
            assert [name for name, _, _ in pages[True]] == [f"plain-{i}" for i in range(5)]
            assert pages[True] == pages[False]
            assert not isinstance(rows[0], Widget)  # no ORM object was built
    finally:
        await engine.dispose()
