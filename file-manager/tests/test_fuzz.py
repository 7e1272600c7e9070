"""Schemathesis against file-manager's own OpenAPI document, as a researcher and an admin:
no 5xx, every status, content type and body as documented (fedimpute_shared.testing.fuzz)."""

from fedimpute_shared.testing.fuzz import FuzzOptions, fuzz_app

from .conftest import good_vcf, upload_raw, wait_validated
from .test_tus import create


async def test_fuzz_the_api(make_app, app, client, alice, admin):
    upload = await upload_raw(client, alice, good_vcf(samples=20, variants=100))
    assert upload.status_code == 201, upload.text
    await wait_validated(app)
    file_id = upload.json()["id"]
    link = (await client.post(f"/files/{file_id}/links", json={}, headers=alice)).json()
    tus = await create(client, alice, 1000)
    assert tus.status_code == 201, tus.text
    options = FuzzOptions(
        known={
            "file_id": [file_id],
            "link_id": [link["id"]],
            "token": [link["url"].rsplit("/", 1)[-1]],
            "upload_id": [tus.headers["location"].rsplit("/", 1)[-1]],
        }
    )
    report = await fuzz_app(make_app(), {"researcher": alice, "admin": admin}, options)
    print(report.summary())
    report.assert_clean()


async def test_openapi_documents_what_downloads_and_tus_answer(client):
    """Found by the fuzzer: downloads were documented as JSON, tus' 412 not at all."""
    paths = (await client.get("/openapi.json")).json()["paths"]
    for path in ("/files/{file_id}/content", "/files/download/{token}"):
        responses = paths[path]["get"]["responses"]
        assert set(responses["200"]["content"]) == {"*/*"}
        assert {"206", "304", "404", "410", "416"} <= set(responses)
    for method in ("head", "patch", "delete"):
        operation = paths["/files/uploads/{upload_id}"][method]
        assert "412" in operation["responses"]
        assert "Tus-Resumable" in [p["name"] for p in operation["parameters"]]
