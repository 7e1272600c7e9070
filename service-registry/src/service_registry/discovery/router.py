"""``GET /services/discover``: rank services for a request and show why."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from fedimpute_shared.db import SessionDep
from service_registry.dependencies import Reader
from service_registry.discovery import repository, scoring
from service_registry.discovery.schemas import (
    DiscoverQuery,
    Discovery,
    ExcludedService,
    PanelMatch,
    RankedService,
    ScorePart,
    ServiceBrief,
)
from service_registry.models import ImputationService

router = APIRouter(tags=["discovery"])


def _brief(service: ImputationService) -> ServiceBrief:
    return ServiceBrief(
        id=service.id,
        slug=service.slug,
        name=service.name,
        kind=service.kind,
        country=service.country,
        health_status=service.health_status,
    )


@router.get("/services/discover", summary="Rank services for a request, with the reasons")
async def discover(
    session: SessionDep, user: Reader, query: Annotated[DiscoverQuery, Query()]
) -> Discovery:
    services = await repository.candidates(session, query.kind)
    request = scoring.Request(**query.model_dump(exclude={"kind"}))
    ranked, excluded = scoring.rank([(s, list(s.panels)) for s in services], request)
    return Discovery(
        results=[
            RankedService(
                service=_brief(r.service),
                score=r.score,
                parts={
                    name: ScorePart(
                        score=p.score, weight=p.weight, points=p.points, reason=p.reason
                    )
                    for name, p in r.parts.items()
                },
                matching_panels=[PanelMatch.model_validate(p) for p in r.matching_panels],
            )
            for r in ranked
        ],
        excluded=[ExcludedService(service=_brief(e.service), reason=e.reason) for e in excluded],
    )
