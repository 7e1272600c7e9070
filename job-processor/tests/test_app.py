"""The app starts, is healthy and ready at the migrations' head, and documents itself."""


async def test_health_and_ready(client):
    assert (await client.get("/health")).status_code == 200
    ready = await client.get("/ready")
    assert ready.status_code == 200, ready.text


async def test_docs_are_served(client):
    response = await client.get("/docs")
    assert response.status_code == 200
    assert "FedImpute job-processor" in (await client.get("/openapi.json")).text
