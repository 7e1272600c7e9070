"""The seed command: real public services, inactive, idempotent, admin edits kept."""

from sqlalchemy import select

from service_registry.models import ImputationService, ReferencePanel
from service_registry.seed import SEED_SERVICES, seed


async def test_seed_registers_inactive_services_with_real_panel_ids(db):
    added = await seed(db)
    await db.commit()
    assert added == [
        "michigan",
        "topmed",
        "afrigen-d",
        "ilifu-wes",
        "elwazi-uganda-wes",
        "elwazi-mali-wes",
    ]
    services = {s.slug: s for s in (await db.scalars(select(ImputationService))).all()}
    assert not any(s.is_active for s in services.values())
    assert services["ilifu-wes"].base_url == "http://ga4gh-starter-kit.ilifu.ac.za:6000"
    assert (
        services["topmed"].cloudgene_app_id is None
    )  # UNVERIFIED in the specs: discovered by sync
    panels = {p.remote_id: p for p in (await db.scalars(select(ReferencePanel))).all()}
    assert panels["apps@h3africa-v6hc-s@1.0.0"].build == "hg38"
    assert panels["apps@topmed-r3"].samples_count == 133597
    assert panels["apps@gasp-v2"].samples_count is None  # not in the specs: not invented


async def test_seed_is_idempotent_and_keeps_admin_changes(db):
    await seed(db)
    await db.commit()
    michigan = (
        await db.scalars(select(ImputationService).where(ImputationService.slug == "michigan"))
    ).one()
    michigan.is_active = True
    michigan.description = "edited by an admin"
    await db.commit()
    assert await seed(db) == []
    await db.commit()
    await db.refresh(michigan)
    assert michigan.is_active is True
    assert michigan.description == "edited by an admin"
    assert len(SEED_SERVICES) == len((await db.scalars(select(ImputationService))).all())


async def test_seeded_services_pass_the_api_rules(client, admin, db):
    await seed(db)
    await db.commit()
    response = await client.get(
        "/services", params={"is_active": False, "limit": 50}, headers=admin
    )
    assert response.status_code == 200
    assert len(response.json()["items"]) == len(SEED_SERVICES)
