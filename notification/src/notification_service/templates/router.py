"""Admins' templates: list, read, replace, revert, preview with sample data."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from fedimpute_shared.db import SessionDep
from fedimpute_shared.problems import NotFound, Unprocessable, problem_responses
from notification_service.dependencies import Admin, SettingsDep
from notification_service.models import Channel
from notification_service.templates import service
from notification_service.templates.schemas import PreviewIn, Rendered, TemplateIn, TemplateOut

router = APIRouter(prefix="/notifications/templates", tags=["templates"])


def _out(template: service.EffectiveTemplate) -> TemplateOut:
    return TemplateOut(
        event_type=template.event_type,
        channel=template.channel,
        parts=template.parts,
        custom=template.custom,
    )


@router.get("", summary="Every template (per event type and channel) and whether it was customised")
async def list_templates(session: SessionDep, admin: Admin) -> list[TemplateOut]:
    return [
        _out(await service.effective(session, event_type, channel))
        for event_type, channel in sorted(service.default_templates())
    ]


@router.get(
    "/{event_type}/{channel}", summary="One template", responses=problem_responses(NotFound)
)
async def get_template(
    event_type: str, channel: Channel, session: SessionDep, admin: Admin
) -> TemplateOut:
    return _out(await service.effective(session, event_type, channel))


@router.put(
    "/{event_type}/{channel}",
    summary="Replace a template (refused unless it renders with sample data)",
    responses=problem_responses(NotFound, Unprocessable),
)
async def put_template(
    event_type: str,
    channel: Channel,
    body: TemplateIn,
    session: SessionDep,
    admin: Admin,
    settings: SettingsDep,
) -> TemplateOut:
    saved = await service.save_override(
        session,
        event_type,
        channel,
        dict(body.parts),
        admin_id=admin.user_id,
        app_url=settings.public_base_url,
    )
    return _out(saved)


@router.delete(
    "/{event_type}/{channel}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Go back to the shipped default",
    responses=problem_responses(NotFound),
)
async def revert_template(
    event_type: str, channel: Channel, session: SessionDep, admin: Admin
) -> Response:
    await service.remove_override(session, event_type, channel)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/{event_type}/{channel}/preview",
    summary="Render the template (or a draft) with sample data",
    responses=problem_responses(NotFound, Unprocessable),
)
async def preview_template(
    event_type: str,
    channel: Channel,
    body: PreviewIn,
    session: SessionDep,
    admin: Admin,
    settings: SettingsDep,
) -> Rendered:
    parts = dict(body.parts) if body.parts else None
    rendered = await service.preview(session, event_type, channel, parts, settings.public_base_url)
    return Rendered(parts=rendered)
