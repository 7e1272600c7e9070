"""``python -m service_registry seed``: register the real public imputation services.

Only facts stated in ``specs/external-protocols.md`` and ``specs/domain.md`` are written (with the
section they come from); anything the specs do not state stays empty rather than guessed. Every
seeded service is **inactive** until an administrator reviews and enables it. Running the
command again adds what is missing and never changes what an administrator edited.
"""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from fedimpute_shared.db import create_engine, create_sessionmaker, session_scope
from service_registry.config import Settings
from service_registry.models import (
    CredentialType,
    HealthStatus,
    ImputationService,
    ReferencePanel,
    ServiceKind,
)
from service_registry.panels.remote import split_app_ref
from service_registry.services import repository

# Cloudgene (MIS2) input rules, §7/§4.3: samples 20..50,000, inputs hg19 or hg38, VCF.
_CLOUDGENE_LIMITS: dict[str, Any] = {
    "min_samples": 20,
    "max_samples": 50000,
    "supported_builds": ["hg19", "hg38"],
    "supported_formats": ["vcf"],
}

SEED_SERVICES: list[dict[str, Any]] = [
    {
        "slug": "michigan",
        "name": "Michigan Imputation Server",
        "kind": ServiceKind.MICHIGAN,
        "base_url": "https://imputationserver.sph.umich.edu",  # §4
        "cloudgene_app_id": "imputationserver2",  # §4: MIS2 runs app imputationserver2
        "description": "Michigan Imputation Server 2 (Cloudgene 3).",
        "credential_type": CredentialType.API_TOKEN,  # §4.1 X-Auth-Token
        **_CLOUDGENE_LIMITS,
        # §4.3 panel ids from MISDOC api.md; sample counts from domain.md where stated.
        "panels": [
            ("hrc-r1.1", "apps@hrc-r1.1", "HRC r1.1", 32470),
            ("1000g-phase-3-v5", "apps@1000g-phase-3-v5", "1000 Genomes Phase 3 (v5)", 2504),
            ("gasp-v2", "apps@gasp-v2", "GAsP v2", None),
            ("genome-asia-panel", "apps@genome-asia-panel", "GenomeAsia panel", None),
            ("1000g-phase-1", "apps@1000g-phase-1", "1000 Genomes Phase 1", None),
            ("cappa", "apps@cappa", "CAAPA", 883),
            ("hapmap-2", "apps@hapmap-2", "HapMap 2", None),
        ],
    },
    {
        "slug": "topmed",
        "name": "TOPMed Imputation Server",
        "kind": ServiceKind.MICHIGAN,
        "base_url": "https://imputation.biodatacatalyst.nhlbi.nih.gov",  # §5
        # §5: the app id (imputationserver or imputationserver2) is UNVERIFIED: left empty so
        # sync-panels discovers it from GET /api/v2/server.
        "cloudgene_app_id": None,
        "description": "TOPMed Imputation Server (Cloudgene API; separate accounts from Michigan).",
        "credential_type": CredentialType.API_TOKEN,
        **_CLOUDGENE_LIMITS,
        "panels": [
            ("topmed-r3", "apps@topmed-r3", "TOPMed r3", 133597, "hg38", ["all"])
        ],  # §5, domain.md
    },
    {
        "slug": "afrigen-d",
        "name": "H3Africa Imputation Service (AfriGen-D)",
        "kind": ServiceKind.MICHIGAN,
        "base_url": "https://impute.afrigen-d.org",  # §6
        "cloudgene_app_id": "imputationserver2",  # §6: an IS2 fork on Cloudgene 3
        "description": "AfriGen-D imputation server with the H3Africa reference panels (hg38).",
        "credential_type": CredentialType.API_TOKEN,
        **_CLOUDGENE_LIMITS,
        "panels": [
            (
                "h3africa-v6hc-s",
                "apps@h3africa-v6hc-s@1.0.0",
                "H3Africa v6 high coverage",
                4447,
                "hg38",
                [],
            ),  # §6
        ],
    },
    {
        "slug": "ilifu-wes",
        "name": "ILIFU GA4GH WES (Starter Kit)",
        "kind": ServiceKind.GA4GH_WES,
        "base_url": "http://ga4gh-starter-kit.ilifu.ac.za:6000",  # §3.1
        "description": "GA4GH Starter Kit WES 0.3.2 at ILIFU; plain HTTP, no auth.",
        "country": "ZA",  # §3.1 "(ILIFU, South Africa)"
        "credential_type": CredentialType.NONE,
        # §3.1: it runs WDL 1.0 and NEXTFLOW 21.04.0 (capabilities, read by sync-panels); the
        # specs name no reference panel on it, so none is invented.
        "panels": [],
    },
    {
        "slug": "elwazi-uganda-wes",
        "name": "eLwazi pilot node, Uganda (GA4GH WES)",
        "kind": ServiceKind.GA4GH_WES,
        "base_url": "http://osdp.ace.ac.ug:6000",  # §3.1
        "description": "eLwazi pilot node running the GA4GH Starter Kit WES; plain HTTP, no auth.",
        "country": "UG",  # §3.1 "(Uganda)"
        "credential_type": CredentialType.NONE,
        "panels": [],
    },
    {
        "slug": "elwazi-mali-wes",
        "name": "eLwazi pilot node, Mali (GA4GH WES)",
        "kind": ServiceKind.GA4GH_WES,
        "base_url": "http://elwazi-node.icermali.org:6000",  # §3.1
        "description": "eLwazi pilot node running the GA4GH Starter Kit WES; plain HTTP, no auth.",
        "country": "ML",  # §3.1 "(Mali)"
        "credential_type": CredentialType.NONE,
        "panels": [],
    },
]


def _service(entry: dict[str, Any]) -> ImputationService:
    fields = {k: v for k, v in entry.items() if k != "panels"}
    fields.setdefault("supported_builds", [])
    fields.setdefault("supported_formats", [])
    return ImputationService(
        **fields,
        protocol_options={},
        requires_credentials=entry["credential_type"] is not CredentialType.NONE,
        is_active=False,  # an administrator enables it after review
        health_status=HealthStatus.UNKNOWN,
        consecutive_failures=0,
    )


def _panel(service: ImputationService, spec: tuple[Any, ...]) -> ReferencePanel:
    """A seeded panel is the row sync-panels later updates: same slug (the bare id, no
    version), the version kept as data."""
    slug, remote_id, name, samples, *rest = spec
    build = rest[0] if rest else None
    populations = rest[1] if len(rest) > 1 else []
    return ReferencePanel(
        service_id=service.id,
        slug=slug,
        remote_id=remote_id,
        version=split_app_ref(remote_id)[1],
        display_name=name,
        samples_count=samples,
        build=build,
        populations=populations,
        is_available=True,
    )


async def seed(session: AsyncSession) -> list[str]:
    """Add the services (and their panels) not registered yet; returns the slugs added."""
    added = []
    for entry in SEED_SERVICES:
        if await repository.slug_taken(session, entry["slug"]):
            continue
        service = _service(entry)
        session.add(service)
        await session.flush()
        session.add_all(_panel(service, spec) for spec in entry["panels"])
        added.append(entry["slug"])
    await session.flush()
    return added


async def _run(settings: Settings) -> list[str]:
    engine = create_engine(settings.database_url, pool_size=1)
    sessionmaker: async_sessionmaker[AsyncSession] = create_sessionmaker(engine)
    try:
        async with session_scope(sessionmaker) as session:
            return await seed(session)
    finally:
        await engine.dispose()


def seed_command(settings: Settings, args: list[str]) -> int:
    added = asyncio.run(_run(settings))
    print(
        f"seeded {len(added)} service(s): {', '.join(added) or 'none (all present)'}; all inactive"
    )
    return 0
