"""The current user's webhook endpoints and their delivery log."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Response, status

from fedimpute_shared.db import SessionDep
from fedimpute_shared.pagination import CodecDep, Page, PageParams, page_params, paginate
from fedimpute_shared.problems import Conflict, NotFound, Unprocessable, problem_responses
from notification_service.dependencies import Reader, SettingsDep, Writer
from notification_service.models import WebhookDelivery, WebhookEndpoint
from notification_service.webhooks import repository, service
from notification_service.webhooks.schemas import (
    DeliveryOut,
    EndpointIn,
    EndpointOut,
    EndpointUpdate,
    EndpointWithSecret,
)

router = APIRouter(prefix="/notifications/webhooks", tags=["webhooks"])


def _with_secret(endpoint: WebhookEndpoint, settings: SettingsDep) -> EndpointWithSecret:
    return EndpointWithSecret(
        **EndpointOut.model_validate(endpoint).model_dump(),
        secret=service.secret_of(endpoint, settings),
    )


@router.get("", summary="My webhooks")
async def list_webhooks(
    session: SessionDep,
    user: Reader,
    codec: CodecDep,
    page: Annotated[PageParams, Depends(page_params)],
) -> Page[EndpointOut]:
    rows, cursor = await paginate(
        session,
        repository.endpoints(user.user_id),
        order_by=[WebhookEndpoint.created_at, WebhookEndpoint.id],
        params=page,
        codec=codec,
    )
    return Page(items=[EndpointOut.model_validate(r) for r in rows], next_cursor=cursor)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Add a webhook (its signing secret is shown once)",
    responses=problem_responses(Unprocessable, Conflict),
)
async def create_webhook(
    body: EndpointIn, session: SessionDep, user: Writer, settings: SettingsDep
) -> EndpointWithSecret:
    endpoint = await service.create_endpoint(session, user.user_id, body, settings)
    return _with_secret(endpoint, settings)


@router.get("/{endpoint_id}", summary="One of my webhooks", responses=problem_responses(NotFound))
async def get_webhook(endpoint_id: uuid.UUID, session: SessionDep, user: Reader) -> EndpointOut:
    return EndpointOut.model_validate(
        await service.get_endpoint(session, user.user_id, endpoint_id)
    )


@router.patch(
    "/{endpoint_id}",
    summary="Change a webhook (URL, format, description, active)",
    responses=problem_responses(NotFound, Unprocessable),
)
async def update_webhook(
    endpoint_id: uuid.UUID,
    body: EndpointUpdate,
    session: SessionDep,
    user: Writer,
    settings: SettingsDep,
) -> EndpointOut:
    endpoint = await service.update_endpoint(session, user.user_id, endpoint_id, body, settings)
    return EndpointOut.model_validate(endpoint)


@router.post(
    "/{endpoint_id}/rotate-secret",
    summary="Replace a webhook's signing secret (the old one stops working at once)",
    responses=problem_responses(NotFound),
)
async def rotate_secret(
    endpoint_id: uuid.UUID, session: SessionDep, user: Writer, settings: SettingsDep
) -> EndpointWithSecret:
    endpoint = await service.rotate_secret(session, user.user_id, endpoint_id)
    return _with_secret(endpoint, settings)


@router.delete(
    "/{endpoint_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a webhook and its delivery log",
    responses=problem_responses(NotFound),
)
async def delete_webhook(endpoint_id: uuid.UUID, session: SessionDep, user: Writer) -> Response:
    await session.delete(await service.get_endpoint(session, user.user_id, endpoint_id))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/{endpoint_id}/deliveries",
    summary="A webhook's delivery log, newest first",
    responses=problem_responses(NotFound),
)
async def list_deliveries(
    endpoint_id: uuid.UUID,
    session: SessionDep,
    user: Reader,
    codec: CodecDep,
    page: Annotated[PageParams, Depends(page_params)],
) -> Page[DeliveryOut]:
    endpoint = await service.get_endpoint(session, user.user_id, endpoint_id)
    rows, cursor = await paginate(
        session,
        repository.deliveries(endpoint.id),
        order_by=[WebhookDelivery.created_at, WebhookDelivery.id],
        params=page,
        codec=codec,
        descending=True,
    )
    return Page(items=[DeliveryOut.model_validate(r) for r in rows], next_cursor=cursor)
