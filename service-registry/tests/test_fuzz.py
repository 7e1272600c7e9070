"""Schemathesis against service-registry's own OpenAPI document, as an admin and a researcher:
no 5xx, every status, content type and body as documented (fedimpute_shared.testing.fuzz)."""

from fedimpute_shared.testing.fuzz import FuzzOptions, fuzz_app

from .conftest import service_body

# They call the registered server over the internet (a fuzzed base_url is any host name);
# test_sync_panels.py and test_health_*.py drive them against local fakes.
OUTBOUND = (
    "POST /services/{id_or_slug}/sync-panels",
    "POST /services/{id_or_slug}/health/check",
    "POST /services/health-sweeps",
)


async def test_fuzz_the_api(make_app, client, admin, researcher):
    service = (await client.post("/services", json=service_body(), headers=admin)).json()
    panel = await client.post(
        "/reference-panels",
        json={
            "service_id": service["id"],
            "slug": "h3africa",
            "remote_id": "apps@h3africa@1",
            "display_name": "H3Africa",
            "populations": ["afr"],
            "build": "hg38",
            "samples_count": 4447,
        },
        headers=admin,
    )
    options = FuzzOptions(
        known={"id_or_slug": [service["id"], service["slug"]], "panel_id": [panel.json()["id"]]},
        exclude=OUTBOUND,
    )
    report = await fuzz_app(make_app(), {"admin": admin, "researcher": researcher}, options)
    print(report.summary())
    report.assert_clean()
