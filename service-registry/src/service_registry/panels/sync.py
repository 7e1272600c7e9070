"""``sync-panels``: read what a service really offers and bring the registry in line.

- Cloudgene (``panels/cloudgene.py``): the imputation app's panels and populations, fetched with
  the administrator's Cloudgene token when given. A panel's identity is its bare id: a new
  version of ``apps@hrc-r1.1@1.0.0`` updates the same row (version recorded), never a duplicate.
- GA4GH WES / DNAstack: the node's service-info, found at its API root (the URL as given, with
  ``/ga4gh/wes/v1``, or without it), becomes the service's **capabilities**
  (``workflows/capabilities.py``), and the panels the node publishes in its tags
  (``fedimpute.reference_panels``) become real panels with their ``location``. Workflow
  languages are capabilities, not panels.

Only facts from the remote are written: what it does not state stays as it was. Panels created
by hand are never touched; synced panels that vanished are marked unavailable.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, StringConstraints
from sqlalchemy.ext.asyncio import AsyncSession

from fedimpute_shared.db import utcnow
from fedimpute_shared.problems import BadGateway, BadRequest, GatewayTimeout
from fedimpute_shared.text import SafeInput, no_nul_anywhere
from service_registry.config import Settings
from service_registry.health.http import ProbeClient, TransportError
from service_registry.health.probes import ProbeFailure, locate_wes
from service_registry.health.service import probe_limits, target_of
from service_registry.models import ImputationService, ReferencePanel, ServiceKind
from service_registry.panels import repository
from service_registry.panels.cloudgene import CloudgeneAuthNeeded, read_cloudgene
from service_registry.panels.remote import RemotePanel, slugify
from service_registry.workflows.capabilities import (
    PANELS_TAG,
    Capabilities,
    capabilities_from,
    published_panels,
)


class SyncRequest(SafeInput):
    """Optional body of ``POST /services/{id}/sync-panels``."""

    model_config = ConfigDict(extra="forbid")

    cloudgene_token: Annotated[SecretStr, StringConstraints(max_length=4096)] | None = Field(
        default=None,
        description="An administrator's Cloudgene API token (X-Auth-Token), used for this sync "
        "only: Cloudgene 3 hides its apps from anonymous callers. Never stored or logged.",
    )


class SyncReport(BaseModel):
    service_id: str
    source: str
    created: list[str]
    updated: list[str]
    unchanged: list[str]
    withdrawn: list[str]
    skipped: list[str] = Field(
        default_factory=list, description="published panels that were refused, and why"
    )
    supported_builds: list[str] | None = None
    cloudgene_app_id: str | None = None
    cloudgene_app_version: str | None = None
    capabilities: Capabilities | None = None


async def sync(
    session: AsyncSession,
    client: ProbeClient,
    service: ImputationService,
    settings: Settings,
    token: str | None = None,
) -> SyncReport:
    """Fetch the remote list, upsert it, and say what changed."""
    try:
        # One overall deadline: a remote that trickles bytes must not hold the request open.
        async with asyncio.timeout(settings.health_check_timeout_seconds * 2):
            if service.kind is ServiceKind.MICHIGAN:
                offer = await _from_cloudgene(client, service, settings, token)
            else:
                offer = await _from_wes(client, service, settings)
    except CloudgeneAuthNeeded as exc:
        raise BadRequest(
            f"Cloudgene hides its apps from this caller ({exc}): send an administrator's "
            'Cloudgene API token as {"cloudgene_token": "..."}'
        ) from None
    except ProbeFailure as exc:
        raise BadGateway(f"the service did not give its panel list: {exc}") from None
    except TimeoutError:
        raise GatewayTimeout("the service did not answer in time") from None
    except TransportError as exc:
        raise BadGateway(f"could not reach the service: {exc}") from None
    report = await _upsert(session, service, offer.panels)
    if offer.builds:
        service.supported_builds = offer.builds
    report.source = offer.source
    report.supported_builds = offer.builds or None
    report.cloudgene_app_id = service.cloudgene_app_id
    report.cloudgene_app_version = service.cloudgene_app_version
    report.skipped = offer.skipped
    report.capabilities = offer.capabilities
    await session.flush()
    return report


@dataclass
class _Offer:
    """What a remote says it offers, before it is matched with our rows."""

    source: str
    panels: list[RemotePanel]
    builds: list[str]
    skipped: list[str] = field(default_factory=list)
    capabilities: Capabilities | None = None


async def _from_cloudgene(
    client: ProbeClient, service: ImputationService, settings: Settings, token: str | None
) -> _Offer:
    listing = await read_cloudgene(
        client, service.base_url, service.cloudgene_app_id, probe_limits(settings), token
    )
    _storable([listing.app_id, listing.app_version, [vars(p) for p in listing.panels]], "app form")
    service.cloudgene_app_id = listing.app_id
    service.cloudgene_app_version = listing.app_version
    return _Offer(listing.source, listing.panels, listing.builds)


async def _from_wes(client: ProbeClient, service: ImputationService, settings: Settings) -> _Offer:
    api_url, _, info = await locate_wes(client, target_of(service), probe_limits(settings))
    _storable(info, "service-info")
    capabilities = capabilities_from(info, api_url, utcnow())
    service.api_url = api_url
    service.capabilities = capabilities.model_dump(mode="json")
    published, skipped = published_panels(info)
    panels = [
        RemotePanel(
            slug=slugify(p.id),
            remote_id=p.id,
            display_name=p.name,
            version=p.version,
            populations=p.populations,
            build=p.build,
            samples_count=p.samples,
            chromosomes=p.chromosomes,
            location=p.location,
        )
        for p in published
    ]
    builds: list[str] = sorted({p.build for p in published if p.build})
    source = f"{api_url}/service-info" + (f" (tags.{PANELS_TAG})" if published or skipped else "")
    return _Offer(source, panels, builds, skipped, capabilities)


def _storable(document: Any, what: str) -> None:
    """A remote document with a NUL character cannot go into PostgreSQL: a clear 502, not a 500."""
    try:
        no_nul_anywhere(document)
    except ValueError:
        raise ProbeFailure(f"the {what} contains NUL characters", 200) from None


async def _upsert(
    session: AsyncSession, service: ImputationService, remote: list[RemotePanel]
) -> SyncReport:
    existing = await repository.for_service(session, service.id)
    by_slug = {p.slug: p for p in existing}
    by_remote = {p.remote_id: p for p in existing}
    now = utcnow()
    report = SyncReport(
        service_id=str(service.id), source="", created=[], updated=[], unchanged=[], withdrawn=[]
    )
    seen: set[str] = set()
    for item in remote:
        # The slug (bare id) is the identity; remote_id catches rows named by hand differently.
        panel = by_slug.get(item.slug) or by_remote.get(item.remote_id)
        if panel is None:
            panel = ReferencePanel(service_id=service.id, slug=item.slug, is_available=True)
            _apply(panel, item)
            session.add(panel)
            report.created.append(item.slug)
        elif _apply(panel, item):
            report.updated.append(panel.slug)
        else:
            report.unchanged.append(panel.slug)
        panel.synced_at = now
        seen.add(panel.slug)
    for panel in existing:
        if panel.slug not in seen and panel.synced_at is not None and panel.is_available:
            panel.is_available = False
            report.withdrawn.append(panel.slug)
    return report


def _apply(panel: ReferencePanel, item: RemotePanel) -> bool:
    """Copy what the remote states onto ``panel``; True when anything changed."""
    wanted: dict[str, Any] = {
        "remote_id": item.remote_id,
        "display_name": item.display_name,
        "is_available": True,
    }
    stated = {
        "version": item.version,
        "populations": item.populations,
        "build": item.build,
        "samples_count": item.samples_count,
        "chromosomes": item.chromosomes,
        "location": item.location,
    }
    wanted |= {name: value for name, value in stated.items() if value not in (None, [])}
    changed = False
    for name, value in wanted.items():
        if getattr(panel, name, None) != value:
            setattr(panel, name, value)
            changed = True
    return changed
