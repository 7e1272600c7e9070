"""create_service_app: problem+json errors, session discipline, health, readiness, metrics."""

import uuid

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from fedimpute_shared.problems import document_problems

PROBLEM = "application/problem+json"


@pytest.fixture
def admin(token_issuer):
    return {"Authorization": "Bearer " + token_issuer.access_token(roles=["admin"])}


@pytest.fixture
def researcher(token_issuer):
    return {"Authorization": "Bearer " + token_issuer.access_token(roles=["researcher"])}


async def test_health_names_the_service(client):
    response = await client.get("/health")
    assert response.json() == {"status": "healthy", "service": "demo", "version": "0.1.0"}


async def test_ready_checks_database_and_migration_head(client):
    response = await client.get("/ready")
    assert response.status_code == 200
    assert response.json()["checks"] == {"database": "ok"}


async def test_ready_is_503_when_migrations_are_behind(client, demo_db_url):
    engine = create_async_engine(demo_db_url)
    async with engine.begin() as conn:
        await conn.execute(text("UPDATE alembic_version SET version_num = 'old'"))
    try:
        response = await client.get("/ready")
        assert response.status_code == 503
        assert "migrations not at head" in response.json()["checks"]["database"]
    finally:
        async with engine.begin() as conn:
            await conn.execute(text("UPDATE alembic_version SET version_num = '0001'"))
        await engine.dispose()


async def test_not_found_is_a_problem(client, researcher):
    response = await client.get(f"/widgets/{uuid.uuid4()}", headers=researcher)
    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["type"].endswith("/not-found")
    assert body["title"] == "Not Found"
    assert body["detail"] == "no such widget"
    assert body["instance"].startswith("/widgets/")


async def test_validation_error_lists_field_paths(client, admin):
    response = await client.post("/widgets", json={"name": ""}, headers=admin)
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM
    errors = response.json()["errors"]
    assert errors[0]["field"] == "body.name"
    assert errors[0]["pointer"] == "#/body/name"
    assert "at least 1 character" in errors[0]["message"]


async def test_malformed_json_is_422_problem(client, admin):
    response = await client.post(
        "/widgets", content=b'{"name": "x",', headers={**admin, "Content-Type": "application/json"}
    )
    assert response.status_code == 422
    assert response.json()["type"].endswith("/malformed-json")


async def test_bad_path_parameter_is_422_problem(client, researcher):
    response = await client.get("/widgets/not-a-uuid", headers=researcher)
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "path.widget_id"


async def test_unknown_route_is_404_problem(client):
    response = await client.get("/nope")
    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM


async def test_unexpected_error_hides_internals(client, caplog):
    response = await client.get("/boom")
    assert response.status_code == 500
    assert response.headers["content-type"] == PROBLEM
    assert "hunter2" not in response.text
    assert "Traceback" not in response.text


async def test_conflict_and_commit_on_success(client, admin, researcher):
    first = await client.post("/widgets", json={"name": "alpha"}, headers=admin)
    assert first.status_code == 201
    again = await client.post("/widgets", json={"name": "alpha"}, headers=admin)
    assert again.status_code == 409
    assert again.json()["type"].endswith("/conflict")
    fetched = await client.get(f"/widgets/{first.json()['id']}", headers=researcher)
    assert fetched.json()["name"] == "alpha"


async def test_error_after_flush_rolls_back(client, admin, researcher, demo_db_url):
    response = await client.post("/widgets/fail-after-write", headers=admin)
    assert response.status_code == 404
    engine = create_async_engine(demo_db_url)
    async with engine.connect() as conn:
        count = await conn.scalar(text("SELECT count(*) FROM widgets"))
    await engine.dispose()
    assert count == 0


async def test_outbox_row_written_in_same_transaction(client, admin, demo_db_url):
    await client.post("/widgets", json={"name": "beta"}, headers=admin)
    await client.post("/widgets", json={"name": "beta"}, headers=admin)  # conflict: rolled back
    engine = create_async_engine(demo_db_url)
    async with engine.connect() as conn:
        rows = (await conn.execute(text("SELECT event_type, payload FROM outbox_events"))).all()
    await engine.dispose()
    assert len(rows) == 1
    assert rows[0][0] == "service.deactivated"
    assert rows[0][1]["service_slug"] == "beta"
    assert rows[0][1]["version"] == 1


async def test_request_id_is_echoed_or_created(client):
    given = await client.get("/health", headers={"X-Request-ID": "abc-123-request"})
    assert given.headers["x-request-id"] == "abc-123-request"
    created = await client.get("/health", headers={"X-Request-ID": "bad id with spaces"})
    assert created.headers["x-request-id"] != "bad id with spaces"
    assert len(created.headers["x-request-id"]) == 32


async def test_metrics_count_by_route_template(client, researcher):
    await client.get(f"/widgets/{uuid.uuid4()}", headers=researcher)
    metrics = (await client.get("/metrics")).text
    assert (
        'http_requests_total{method="GET",route="/widgets/{widget_id}",status="404"} 1.0' in metrics
    )
    assert "http_request_duration_seconds_bucket" in metrics


async def test_openapi_documents_problem_responses(client):
    spec = (await client.get("/openapi.json")).json()
    assert "Problem" in spec["components"]["schemas"]
    problem = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}

    def statuses(path: str, method: str) -> dict[str, dict]:
        return spec["paths"][path][method]["responses"]

    # Declared once by the factory, from what each operation takes: a token, a body, a path id.
    create = statuses("/widgets", "post")
    assert {"400", "401", "403", "413", "422"} <= set(create)
    assert "404" not in create
    assert {"401", "403", "404", "422"} <= set(statuses("/widgets/{widget_id}", "get"))
    listing = statuses("/widgets", "get")
    assert {"400", "401", "403", "422"} <= set(listing)
    assert "413" not in listing
    # No token, no input: nothing but its own answer (FastAPI's blanket 422 is gone too).
    assert set(statuses("/boom", "get")) == {"200"}
    # Every problem is documented with the content type it is sent with, never application/json.
    for item in spec["paths"].values():
        for operation in item.values():
            for code, response in operation["responses"].items():
                if code[0] in "45":
                    assert response["content"] == problem, (code, operation["operationId"])
    assert "HTTPValidationError" not in spec["components"]["schemas"]


def test_document_problems_adds_what_a_front_answers_and_keeps_route_declarations():
    spec = {
        "paths": {
            "/things/{id}": {
                "parameters": [],
                "delete": {
                    "parameters": [{"name": "id", "in": "path"}],
                    "responses": {
                        "204": {"description": "gone"},
                        "460": {"description": "Checksum Mismatch"},  # tus' own status
                        "461": {},
                        "409": {
                            "description": "in use",
                            "content": {"application/json": {"schema": {"type": "object"}}},
                        },
                    },
                },
            }
        }
    }
    document_problems(spec, every_operation={429: "slow down"})
    responses = spec["paths"]["/things/{id}"]["delete"]["responses"]
    # sorted, no 401: no security
    assert list(responses) == ["204", "404", "409", "422", "429", "460", "461"]
    assert responses["460"]["description"] == "Checksum Mismatch"
    assert responses["461"]["description"] == "Error"
    assert responses["409"]["description"] == "in use"
    assert responses["409"]["content"] == {
        "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
    }
    assert responses["429"]["description"] == "slow down"
    assert {"Problem", "FieldProblem"} <= set(spec["components"]["schemas"])
