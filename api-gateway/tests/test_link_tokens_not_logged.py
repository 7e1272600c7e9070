"""Issue 10 item 9 at the gateway: the token of a signed download link (in the path) and a
WebSocket ticket (in the query) never reach a log line."""

import logging

TOKEN = "ZnthzS8eRNSzHs6YhZm03gAAAABrDLl623gxBbV7_7V9up8k4r928C8hErs"


async def test_a_link_download_through_the_gateway_logs_no_token(client, caplog, upstream_logs):
    caplog.set_level(logging.DEBUG)
    caplog.clear()
    response = await client.get(f"/api/files/download/{TOKEN}")
    assert response.status_code == 200
    assert upstream_logs["file-manager"].requests[0]["path"] == f"/files/download/{TOKEN}"
    access = [r.getMessage() for r in caplog.records if r.name == "fedimpute.access"]
    assert access
    assert all("/api/files/download/[REDACTED]" in line for line in access), access
    assert not [r.getMessage() for r in caplog.records if TOKEN in r.getMessage()]
