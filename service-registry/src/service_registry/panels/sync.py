"""``sync-panels``: fetch the panel list a service really advertises and upsert it.

- Cloudgene: ``GET {base}/api/v2/server/apps/{app}`` (anonymous). Its ``refpanel`` input
  (``type: app_list``) lists the panels as ``{key: "apps@<id>", value: <name>}``; its
  ``population`` input (``type: binded_list``, bound to ``refpanel``) lists each panel's
  populations as ``{key: "apps@<id>", label, values: [{key, value}]}``; its ``build`` input lists
  the input builds the server accepts. When the service has no app id yet, the first app of
  ``GET /api/v2/server`` whose id starts with ``imputationserver`` is used.
- GA4GH WES / DNAstack: service-info ``workflow_type_versions`` (spec objects or Starter Kit
  bare arrays); each type and version becomes one entry.

Only facts from the remote are written: counts and builds the remote does not state stay null.
Panels created by hand are never touched; synced panels that vanished are marked unavailable.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from fedimpute_shared.db import utcnow
from fedimpute_shared.problems import BadGateway, GatewayTimeout
from service_registry.config import Settings
from service_registry.health.http import ProbeClient, TransportError
from service_registry.health.probes import (
    CLOUDGENE_PREFIX,
    ProbeFailure,
    fetch_json,
    probe_url,
    workflow_types,
)
from service_registry.health.service import probe_limits, target_of
from service_registry.models import ImputationService, ReferencePanel, ServiceKind
from service_registry.panels import repository


@dataclass
class RemotePanel:
    slug: str
    remote_id: str
    display_name: str
    populations: list[str] = field(default_factory=list)


class SyncReport(BaseModel):
    service_id: str
    source: str
    created: list[str]
    updated: list[str]
    unchanged: list[str]
    withdrawn: list[str]
    supported_builds: list[str] | None = None
    cloudgene_app_id: str | None = None


def slugify(remote_id: str) -> str:
    text = remote_id.removeprefix("apps@").lower()
    return re.sub(r"[^a-z0-9._-]+", "-", text).strip("-._")[:100] or "panel"


async def sync(
    session: AsyncSession,
    client: ProbeClient,
    service: ImputationService,
    settings: Settings,
) -> SyncReport:
    """Fetch the remote list, upsert it, and say what changed."""
    try:
        # One overall deadline: a remote that trickles bytes must not hold the request open.
        async with asyncio.timeout(settings.health_check_timeout_seconds * 2):
            if service.kind is ServiceKind.MICHIGAN:
                source, remote, builds = await _cloudgene_panels(client, service, settings)
            else:
                source, remote, builds = await _wes_workflows(client, service, settings)
    except ProbeFailure as exc:
        raise BadGateway(f"the service did not give its panel list: {exc}") from None
    except TimeoutError:
        raise GatewayTimeout("the service did not answer in time") from None
    except TransportError as exc:
        raise BadGateway(f"could not reach the service: {exc}") from None
    report = await _upsert(session, service, remote)
    if builds:
        service.supported_builds = builds
    report.source = source
    report.supported_builds = builds or None
    report.cloudgene_app_id = service.cloudgene_app_id
    await session.flush()
    return report


async def _cloudgene_panels(
    client: ProbeClient, service: ImputationService, settings: Settings
) -> tuple[str, list[RemotePanel], list[str]]:
    root = service.base_url.rstrip("/").removesuffix(CLOUDGENE_PREFIX) + CLOUDGENE_PREFIX
    limits = probe_limits(settings)
    if not service.cloudgene_app_id:
        _, server = await fetch_json(client, f"{root}/server", limits)
        service.cloudgene_app_id = _pick_imputation_app(server)
    url = f"{root}/server/apps/{service.cloudgene_app_id}"
    _, app = await fetch_json(client, url, limits)
    params = (
        {p.get("id"): p for p in app.get("params", []) if isinstance(p, dict)}
        if isinstance(app, dict)
        else {}
    )
    if "refpanel" not in params:
        raise ProbeFailure(f"app {service.cloudgene_app_id!r} has no refpanel input")
    populations = _populations(params.get("population"))
    panels = [
        RemotePanel(
            slugify(key),
            key,
            str(v.get("value") or v.get("label") or key),
            populations.get(key, []),
        )
        for v in params["refpanel"].get("values") or []
        if isinstance(v, dict) and isinstance(key := v.get("key"), str) and key
    ]
    builds = sorted(
        {
            str(v.get("key"))
            for v in (params.get("build") or {}).get("values") or []
            if isinstance(v, dict) and v.get("key") in ("hg19", "hg38")
        }
    )
    return url, panels, builds


# The genotype-imputation apps of Cloudgene servers, most recent first (specs §4): MIS2/TOPMed
# v2/AfriGen-D, then MIS v1. Variants such as imputationserver2-pgs or -hla are other apps.
KNOWN_IMPUTATION_APPS = ("imputationserver2", "imputationserver", "minimac4")


def _pick_imputation_app(server: Any) -> str:
    apps = server.get("apps") if isinstance(server, dict) else None
    ids = [str(a.get("id")) for a in apps or [] if isinstance(a, dict) and a.get("id")]
    for app_id in KNOWN_IMPUTATION_APPS:
        if app_id in ids:
            return app_id
    raise ProbeFailure(f"no genotype imputation app among the server's apps {ids}")


def _populations(param: Any) -> dict[str, list[str]]:
    """Panel key → population ids, from the ``binded_list`` bound to ``refpanel``."""
    if not isinstance(param, dict):
        return {}
    out: dict[str, list[str]] = {}
    for entry in param.get("values") or []:
        if isinstance(entry, dict) and isinstance(entry.get("key"), str):
            out[entry["key"]] = [
                str(p["key"])
                for p in entry.get("values") or []
                if isinstance(p, dict) and p.get("key")
            ]
    return out


async def _wes_workflows(
    client: ProbeClient, service: ImputationService, settings: Settings
) -> tuple[str, list[RemotePanel], list[str]]:
    url = probe_url(target_of(service))
    _, info = await fetch_json(client, url, probe_limits(settings))
    if not isinstance(info, dict) or "workflow_type_versions" not in info:
        raise ProbeFailure("service-info lists no workflow_type_versions")
    panels = [
        RemotePanel(
            slugify(f"{name}-{version}"), f"{name}:{version}", f"{name} {version} workflows"
        )
        for name, versions in sorted(workflow_types(info["workflow_type_versions"]).items())
        for version in versions
    ]
    return url, panels, []


async def _upsert(
    session: AsyncSession, service: ImputationService, remote: list[RemotePanel]
) -> SyncReport:
    existing = await repository.for_service(session, service.id)
    by_remote = {p.remote_id: p for p in existing}
    by_slug = {p.slug: p for p in existing}
    now = utcnow()
    report = SyncReport(
        service_id=str(service.id), source="", created=[], updated=[], unchanged=[], withdrawn=[]
    )
    seen: set[str] = set()
    for item in remote:
        panel = by_remote.get(item.remote_id) or by_slug.get(item.slug)
        if panel is None:
            panel = ReferencePanel(
                service_id=service.id,
                slug=item.slug,
                remote_id=item.remote_id,
                display_name=item.display_name,
                populations=item.populations,
                is_available=True,
                synced_at=now,
            )
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
    if item.populations:
        wanted["populations"] = item.populations
    changed = False
    for name, value in wanted.items():
        if getattr(panel, name) != value:
            setattr(panel, name, value)
            changed = True
    return changed
