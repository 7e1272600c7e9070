"""Discovery: ranking with visible reasons, and exclusions that say why."""

from service_registry.discovery.scoring import haversine_km

from .conftest import service_body


async def setup_fleet(client, admin, db):
    from sqlalchemy import select

    from service_registry.models import HealthStatus, ImputationService

    afrigen = (await client.post("/services", json=service_body(), headers=admin)).json()
    michigan = (
        await client.post(
            "/services",
            json=service_body(
                name="Michigan Imputation Server",
                slug="michigan",
                base_url="https://imputationserver.sph.umich.edu",
                location={"country": "US", "latitude": 42.28, "longitude": -83.74},
                limits={
                    "min_samples": 20,
                    "max_samples": 50000,
                    "supported_builds": ["hg19", "hg38"],
                },
            ),
            headers=admin,
        )
    ).json()
    small = (
        await client.post(
            "/services",
            json=service_body(
                name="Small node",
                slug="small",
                base_url="https://small.example.org",
                location={"country": "NG"},
                limits={"max_samples": 100, "supported_builds": ["hg19"]},
            ),
            headers=admin,
        )
    ).json()
    panels = [
        (afrigen, "h3africa-v6", "apps@h3africa-v6hc-s@1.0.0", ["afr", "mixed"], "hg38"),
        (michigan, "1kg", "apps@1000g-phase-3-v5", ["eur", "afr", "mixed"], "hg19"),
        (michigan, "hrc", "apps@hrc-r1.1", ["eur"], "hg19"),
        (small, "1kg", "apps@1000g-phase-3-v5", ["afr"], "hg19"),
    ]
    for service, slug, remote_id, pops, build in panels:
        body = {
            "service_id": service["id"],
            "slug": slug,
            "remote_id": remote_id,
            "display_name": slug,
            "populations": pops,
            "build": build,
        }
        assert (await client.post("/reference-panels", json=body, headers=admin)).status_code == 201
    rows = {s.slug: s for s in (await db.scalars(select(ImputationService))).all()}
    rows["afrigen-d"].health_status, rows["afrigen-d"].response_time_ms = (
        HealthStatus.HEALTHY,
        150.0,
    )
    rows["michigan"].health_status, rows["michigan"].response_time_ms = (
        HealthStatus.DEGRADED,
        2500.0,
    )
    rows["small"].health_status = HealthStatus.UNHEALTHY
    await db.commit()


async def test_african_cohort_in_hg38_prefers_h3africa_near_home(client, admin, researcher, db):
    await setup_fleet(client, admin, db)
    response = await client.get(
        "/services/discover",
        params={
            "build": "hg38",
            "population": "AFR",
            "samples": 500,
            "latitude": -26.2,
            "longitude": 28.0,
        },
        headers=researcher,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    ranked = [r["service"]["slug"] for r in body["results"]]
    assert ranked == ["afrigen-d", "michigan"]
    top = body["results"][0]
    assert set(top["parts"]) == {"health", "panel", "limits", "distance", "response_time"}
    assert top["parts"]["panel"]["reason"] == "h3africa-v6 is in hg38"
    assert top["parts"]["health"]["points"] == 35.0
    assert top["score"] == round(sum(p["points"] for p in top["parts"].values()), 2)
    assert [p["slug"] for p in top["matching_panels"]] == ["h3africa-v6"]
    excluded = {e["service"]["slug"]: e["reason"] for e in body["excluded"]}
    assert excluded == {"small": "takes at most 100 samples (you have 500)"}


async def test_panel_request_excludes_services_without_it(client, admin, researcher, db):
    await setup_fleet(client, admin, db)
    body = (
        await client.get("/services/discover", params={"panel": "hrc-r1.1"}, headers=researcher)
    ).json()
    assert [r["service"]["slug"] for r in body["results"]] == ["michigan"]
    assert {e["service"]["slug"] for e in body["excluded"]} == {"afrigen-d", "small"}
    assert "no available panel matches panel 'hrc-r1.1'" in body["excluded"][0]["reason"]


async def test_too_few_samples_and_inactive_are_excluded_with_reason(client, admin, researcher, db):
    await setup_fleet(client, admin, db)
    await client.patch("/services/michigan", json={"is_active": False}, headers=admin)
    body = (
        await client.get("/services/discover", params={"samples": 5}, headers=researcher)
    ).json()
    reasons = {e["service"]["slug"]: e["reason"] for e in body["excluded"]}
    assert reasons["michigan"] == "the service is not active"
    assert reasons["afrigen-d"] == "needs at least 20 samples (you have 5)"
    assert [r["service"]["slug"] for r in body["results"]] == ["small"]


async def test_bad_discovery_queries(client, researcher):
    for params in (
        {"build": "hg17"},
        {"samples": 0},
        {"latitude": 10},
        {"country": "ZAF"},
        {"latitude": 100, "longitude": 0},
    ):
        assert (
            await client.get("/services/discover", params=params, headers=researcher)
        ).status_code == 422, params


async def test_discover_needs_login(client):
    assert (await client.get("/services/discover")).status_code == 401


def test_haversine():
    # Cape Town to Johannesburg is about 1,260 km
    assert 1200 < haversine_km(-33.92, 18.42, -26.2, 28.04) < 1320
