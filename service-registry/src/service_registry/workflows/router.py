"""HTTP routes of workflow profiles: the shipped templates, and a WES service's profile."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from fedimpute_shared.db import SessionDep
from fedimpute_shared.problems import (
    Conflict,
    Forbidden,
    NotFound,
    Unprocessable,
    problem_responses,
)
from service_registry.dependencies import Reader, Writer
from service_registry.services import service as services
from service_registry.workflows import service
from service_registry.workflows.schemas import ProfileRequest, ProfileTemplate, WorkflowProfile
from service_registry.workflows.templates import TEMPLATES

router = APIRouter(tags=["workflow profiles"])


@router.get("/workflow-profiles/templates", summary="Workflow profiles shipped with the registry")
async def list_templates(user: Reader) -> list[ProfileTemplate]:
    return list(TEMPLATES.values())


@router.put(
    "/services/{id_or_slug}/workflow-profile",
    summary="Set how jobs run on a WES service (checked against its capabilities)",
    responses=problem_responses(NotFound, Conflict, Unprocessable, Forbidden),
)
async def put_profile(
    id_or_slug: str, body: ProfileRequest, session: SessionDep, user: Writer
) -> WorkflowProfile:
    found = await services.find(session, id_or_slug)
    return await service.set_profile(session, found, body)


@router.delete(
    "/services/{id_or_slug}/workflow-profile",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Remove a WES service's workflow profile",
    responses=problem_responses(NotFound, Forbidden),
)
async def delete_profile(id_or_slug: str, session: SessionDep, user: Writer) -> Response:
    await service.clear_profile(session, await services.find(session, id_or_slug))
    return Response(status_code=status.HTTP_204_NO_CONTENT)
