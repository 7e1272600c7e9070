"""The registry against real WES servers installed from PyPI (sapporo at its root and under
/ga4gh/wes/v1, and wes-service): health and capability sync work unchanged. Skipped only when
the servers are not installed (`make install` installs them)."""

import pytest

from fedimpute_shared.testing.client import app_client

from .conftest import service_body

WES_FIELDS = {
    "kind": "ga4gh_wes",
    "cloudgene_app_id": None,
    "requires_credentials": False,
    "credential_type": "none",
}


@pytest.fixture
async def api(make_app, db):
    # wes-service runs `cwl-runner --version` on every service-info: seconds, so not "slow" here.
    settings = {
        "allow_private_urls": True,
        "on_demand_reuse_seconds": 0,
        "degraded_after_ms": 30000,
    }
    async with app_client(make_app(**settings, health_check_timeout_seconds=30)) as c:
        yield c


async def check_and_sync(api, admin, slug, base_url, expected_api, *, recheck=True):
    """Register ``base_url``, check its health, sync its capabilities; returns the service id."""
    body = service_body(slug=slug, base_url=base_url, **WES_FIELDS)
    created = await api.post("/services", json=body, headers=admin)
    assert created.status_code == 201, created.text
    service_id = created.json()["id"]
    report = (await api.post(f"/services/{service_id}/health/check", headers=admin)).json()
    assert report["status"] == "healthy", report
    synced = await api.post(f"/services/{service_id}/sync-panels", headers=admin)
    assert synced.status_code == 200, synced.text
    caps = synced.json()["capabilities"]
    assert "CWL" in caps["workflow_type_versions"]
    assert caps["api_url"] == expected_api
    assert (await api.get(f"/services/{service_id}", headers=admin)).json()[
        "api_url"
    ] == expected_api
    if recheck:  # now straight at the stored API root
        again = (await api.post(f"/services/{service_id}/health/check", headers=admin)).json()
        assert again["status"] == "healthy"
    return service_id


async def test_sapporo_under_the_prefix_registered_either_way(api, admin, real_wes_server):
    node = real_wes_server("sapporo", url_prefix="/ga4gh/wes/v1")
    # sapporo serves the API at its root too: the URL as given is tried first.
    await check_and_sync(api, admin, "by-root", node.base_url, node.base_url)
    service_id = await check_and_sync(api, admin, "by-api", node.api_url, node.api_url)
    profile = await api.put(
        f"/services/{service_id}/workflow-profile",
        json={"template": "fedimpute-imputation-cwl", "workflow_url": f"{node.base_url}/wf.cwl"},
        headers=admin,
    )
    assert profile.status_code == 200, profile.text


async def test_sapporo_at_its_root(api, admin, real_wes_server):
    node = real_wes_server("sapporo")
    await check_and_sync(api, admin, "root-only", node.base_url, node.base_url)
    # registered with the standard prefix that it does not serve: found at the root instead
    await check_and_sync(api, admin, "root-only-2", node.base_url + "/ga4gh/wes/v1", node.base_url)


async def test_wes_service_registered_by_its_root(api, admin, real_wes_server):
    # Its service-info runs `cwl-runner --version` each time (seconds): one registration, the
    # harder one (the API is only under /ga4gh/wes/v1 and must be found there).
    node = real_wes_server("wes-service")
    await check_and_sync(api, admin, "ref-root", node.base_url, node.api_url, recheck=False)
