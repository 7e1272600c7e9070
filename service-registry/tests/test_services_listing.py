"""``GET /services`` answered from renderings kept per row version (services/listing.py): the
same JSON as ``Page[ServiceOut]``, and never a stale one, however the row changed."""

from datetime import timedelta

from sqlalchemy import select, text

from fedimpute_shared.pagination import Page
from service_registry.models import ImputationService
from service_registry.services import repository
from service_registry.services.listing import RenderedServices
from service_registry.services.schemas import ServiceOut


async def _listed(client, headers, **params):
    response = await client.get("/services", params=params, headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    return response


async def test_the_page_is_the_json_of_page_of_service_out(client, researcher, new_service):
    ids = [(await new_service(slug=f"svc-{i}", name=f"Service {i}"))["id"] for i in range(3)]
    for _ in range(2):  # rendered, then from the renderings kept
        response = await _listed(client, researcher, limit=2)
        singles = [(await client.get(f"/services/{i}", headers=researcher)).json() for i in ids]
        expected = Page[ServiceOut](
            items=[ServiceOut.model_validate(s) for s in singles[:2]],
            next_cursor=response.json()["next_cursor"],
        )
        assert response.content == expected.model_dump_json(by_alias=True).encode()
    last = await _listed(client, researcher, limit=2, cursor=response.json()["next_cursor"])
    assert last.json() == {"items": singles[2:], "next_cursor": None}


async def test_a_row_changed_by_hand_is_rendered_again(client, researcher, new_service, db):
    """No ORM, no ``updated_at``: the row's new version alone shows the change."""
    created = await new_service()
    assert (await _listed(client, researcher)).json()["items"][0]["health"]["last_error"] is None
    await db.execute(
        text("UPDATE imputation_services SET last_error = 'refused' WHERE id = :id"),
        {"id": created["id"]},
    )
    await db.commit()
    listed = (await _listed(client, researcher)).json()["items"]
    assert listed[0]["health"]["last_error"] == "refused"
    assert listed[0]["updated_at"] == created["updated_at"]


async def test_at_risk_turns_with_the_clock_alone(client, researcher, new_service, db, clock):
    created = await new_service()
    since = clock.now() - timedelta(days=24, hours=23)  # at risk after 25 days (Settings)
    await db.execute(
        text("UPDATE imputation_services SET first_unhealthy_at = :t WHERE id = :id"),
        {"t": since, "id": created["id"]},
    )
    await db.commit()
    assert (await _listed(client, researcher)).json()["items"][0]["health"]["at_risk"] is False
    await clock.advance(3600)
    assert (await _listed(client, researcher)).json()["items"][0]["health"]["at_risk"] is True


async def test_renderings_are_bounded_and_replaced_per_row(settings, new_service, db):
    for i in range(3):
        await new_service(slug=f"svc-{i}", name=f"Service {i}")
    ids = list((await db.scalars(select(ImputationService.id))).all())
    rows = await repository.by_ids_with_version(db, ids)
    rendered = RenderedServices(settings, max_entries=2)
    for row in rows:
        rendered.render(row)

    def key(row, version=None):
        version = row.row_version if version is None else version
        return {"id": row.id, "row_version": version, "first_unhealthy_at": None}

    assert rendered.get(key(rows[0])) is None  # the oldest went
    assert rendered.get(key(rows[1])) is not None
    assert rendered.get(key(rows[2])) is not None
    assert rendered.get(key(rows[2], version=rows[2].row_version + 1)) is None


async def test_one_service_by_id_or_slug_is_its_json_and_never_stale(
    client, researcher, new_service, db
):
    created = await new_service()
    by_id = await client.get(f"/services/{created['id']}", headers=researcher)
    by_slug = await client.get(f"/services/{created['slug']}", headers=researcher)
    assert by_id.status_code == by_slug.status_code == 200
    assert by_id.headers["content-type"] == "application/json"
    assert by_id.content == by_slug.content
    assert (
        by_id.content
        == ServiceOut.model_validate(by_id.json()).model_dump_json(by_alias=True).encode()
    )
    assert by_id.json() == (await _listed(client, researcher)).json()["items"][0]
    await db.execute(
        text("UPDATE imputation_services SET last_error = 'refused' WHERE id = :id"),
        {"id": created["id"]},
    )
    await db.commit()
    again = await client.get(f"/services/{created['slug']}", headers=researcher)
    assert again.json()["health"]["last_error"] == "refused"
    missing = await client.get("/services/nope", headers=researcher)
    assert missing.status_code == 404
    assert missing.json()["detail"] == "no imputation service 'nope'"
