"""Issue 10 item 9: a signed download link's token (in the path) never reaches a log line; it is
valid for days, so a log reader could download the file."""

import logging

from fedimpute_shared.logs import RedactingFilter

from .conftest import good_vcf, upload_raw, wait_validated


async def test_a_link_download_logs_no_token(client, app, alice, caplog):
    meta = (await upload_raw(client, alice, good_vcf())).json()
    await wait_validated(app)
    link = (await client.post(f"/files/{meta['id']}/links", json={}, headers=alice)).json()
    token = link["url"].rsplit("/", 1)[1]
    caplog.set_level(logging.DEBUG)
    caplog.clear()
    assert (await client.get(link["url"])).status_code == 200
    assert (await client.head(link["url"])).status_code == 200
    assert (await client.get("/files/download/" + "A" * 48)).status_code == 404
    access = [r.getMessage() for r in caplog.records if r.name == "fedimpute.access"]
    assert len(access) == 3
    assert all("/files/download/[REDACTED]" in line for line in access), access
    assert not [r.getMessage() for r in caplog.records if token in r.getMessage()]


def test_uvicorns_own_access_line_is_redacted_too():
    """Should uvicorn's access log be switched on, the redacting filter still hides the token
    (and a WebSocket ticket in a query string)."""
    for path, secret in [
        ("/api/files/download/AbC-d_e0123456789abcdefXYZ", "AbC-d_e0123456789abcdefXYZ"),
        ("/files/download/AbC-d_e0123456789abcdefXYZ?x=1", "AbC-d_e0123456789abcdefXYZ"),
        ("/api/notifications/ws?ticket=tkt_5ecret-Value", "tkt_5ecret-Value"),
    ]:
        record = logging.LogRecord(
            "uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
            ("203.0.113.9:5555", "GET", path, "1.1", 200), None,
        )  # fmt: skip
        RedactingFilter().filter(record)
        assert secret not in record.getMessage()
