"""The migrations build exactly the models' schema, going down removes every table, and 0002
cleans what an older registry left (WES pseudo-panels made from workflow types go, Cloudgene
panel slugs lose their version, kept as data) — migration 0003."""

import asyncio
import uuid

from alembic import command
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from fedimpute_shared.migrations import alembic_config
from fedimpute_shared.testing.database import (
    migrated_database,
    schema_drift,
    tables_after_downgrade,
)
from service_registry.main import MIGRATIONS_DIR
from service_registry.models import Base


async def test_migrations_match_the_models(engine):
    assert await schema_drift(engine, Base.metadata) == []


async def test_down_migration_removes_every_table(postgres_admin_url):
    remaining = await tables_after_downgrade(postgres_admin_url, "service-registry", MIGRATIONS_DIR)
    assert remaining == {"alembic_version"}


SERVICE = (
    "INSERT INTO imputation_services (id, name, slug, kind, base_url, protocol_options,"
    " supported_builds, supported_formats, requires_credentials, credential_type, is_active,"
    " health_status, consecutive_failures) VALUES (:id, :slug, :slug, :kind, 'https://x',"
    " '{}', '{}', '{}', false, 'none', true, 'unknown', 0)"
)
PANEL = (
    "INSERT INTO reference_panels (id, service_id, slug, remote_id, display_name, populations,"
    " is_available, access) VALUES (:id, :service, :slug, :remote, :slug, '{}', true, 'public')"
)


async def _execute(url, statements):
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            results = [await conn.execute(text(sql), params) for sql, params in statements]
            return [r.all() if r.returns_rows else None for r in results]
    finally:
        await engine.dispose()


async def test_0003_cleans_what_an_older_sync_left(postgres_admin_url):
    async with migrated_database(postgres_admin_url, "registry-migration", MIGRATIONS_DIR) as url:
        config = alembic_config(MIGRATIONS_DIR, url)
        await asyncio.to_thread(command.downgrade, config, "0002")
        wes, cg = uuid.uuid4(), uuid.uuid4()
        await _execute(
            url,
            [
                (SERVICE, {"id": wes, "slug": "wes", "kind": "ga4gh_wes"}),
                (SERVICE, {"id": cg, "slug": "cg", "kind": "michigan"}),
                *[
                    (
                        PANEL,
                        {"id": uuid.uuid4(), "service": service, "slug": slug, "remote": remote},
                    )
                    for service, slug, remote in (
                        (wes, "wdl-1.0", "WDL:1.0"),
                        (wes, "nextflow-21.04.0", "NEXTFLOW:21.04.0"),
                        (wes, "by-hand", "sim-panel"),
                        (cg, "h3africa-v6hc-s-1.0.0", "apps@h3africa-v6hc-s@1.0.0"),
                        (cg, "hrc-r1.1", "apps@hrc-r1.1"),
                    )
                ],
            ],
        )
        await asyncio.to_thread(command.upgrade, config, "head")
        [rows] = await _execute(
            url, [("SELECT slug, remote_id, version FROM reference_panels ORDER BY slug", {})]
        )
    assert [tuple(r) for r in rows] == [
        ("by-hand", "sim-panel", None),
        ("h3africa-v6hc-s", "apps@h3africa-v6hc-s@1.0.0", "1.0.0"),
        ("hrc-r1.1", "apps@hrc-r1.1", None),
    ]
