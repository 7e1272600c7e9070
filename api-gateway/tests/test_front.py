"""The gateway's own pages: the root a newcomer opens first, and the documentation of every
problem type the APIs answer with (each problem's ``type`` resolves to one of them)."""

import importlib
import pkgutil

import pytest

from fedimpute_shared.fleet import FLEET
from fedimpute_shared.problem_types import PROBLEM_TYPES
from fedimpute_shared.problems import ProblemError

HTML = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}


async def test_root_answers_json_pointing_at_docs_openapi_and_status(client):
    response = await client.get("/")
    assert response.status_code == 200
    assert response.json()["links"] == {
        "docs": "/docs",
        "openapi": "/api/openapi.json",
        "status": "/api/status",
        "problems": "/problems",
    }


async def test_root_answers_a_browser_with_a_short_page(client):
    response = await client.get("/", headers=HTML)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    for href in ("/docs", "/api/openapi.json", "/api/status"):
        assert f'href="{href}"' in response.text


async def test_a_problem_type_uri_resolves_to_its_documentation(client):
    """A real error from the gateway: its ``type``, resolved against the URL called, is a page
    of the project's own documentation."""
    refused = await client.get("/api/no-such-prefix/x")
    assert refused.status_code == 404
    problem_type = refused.json()["type"]
    assert problem_type == "/problems/not-found"
    page = await client.get(problem_type, headers=HTML)
    assert page.status_code == 200
    assert "Not Found (404)" in page.text
    assert "What to do" in page.text
    described = (await client.get(problem_type)).json()
    assert (described["slug"], described["status"], described["type"]) == (
        "not-found",
        404,
        "/problems/not-found",
    )


async def test_the_index_lists_every_problem_type(client):
    listed = (await client.get("/problems")).json()
    assert {p["slug"] for p in listed} == set(PROBLEM_TYPES)
    page = await client.get("/problems", headers=HTML)
    assert 'href="/problems/checksum-mismatch"' in page.text


async def test_an_unknown_problem_type_is_a_404_problem(client):
    response = await client.get("/problems/no-such-type")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


def _every_problem_class() -> list[type[ProblemError]]:
    """Every ProblemError subclass of the shared library and of each installed service."""
    for entry in FLEET:
        if not entry.installed:
            continue
        package = importlib.import_module(entry.package)
        for module in pkgutil.walk_packages(package.__path__, f"{entry.package}."):
            if ".migrations" in module.name or module.name.endswith("__main__"):
                continue
            importlib.import_module(module.name)
    found: list[type[ProblemError]] = []
    pending = [ProblemError]
    while pending:
        cls = pending.pop()
        found.append(cls)
        pending.extend(cls.__subclasses__())
    return found


@pytest.mark.parametrize("slug", ["validation-error", "malformed-json", "internal-error"])
def test_the_types_the_handlers_emit_are_documented(slug):
    assert slug in PROBLEM_TYPES


def test_every_problem_a_service_raises_is_documented_with_its_status():
    missing = {
        f"{cls.__module__}.{cls.__qualname__}: {cls.slug}"
        for cls in _every_problem_class()
        if cls.slug not in PROBLEM_TYPES
    }
    assert not missing, "document these in fedimpute_shared.problem_types"
    for cls in _every_problem_class():
        # upstream-refused passes on the status the upstream answered
        if cls is not ProblemError and cls.slug != "upstream-refused":
            assert cls.status in PROBLEM_TYPES[cls.slug].statuses, cls
