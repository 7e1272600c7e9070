"""The migrations build exactly the models' schema, and going down removes every table."""

from fedimpute_shared.testing.database import schema_drift, tables_after_downgrade
from monitoring_service.main import MIGRATIONS_DIR
from monitoring_service.models import Base


async def test_migrations_match_the_models(engine):
    assert await schema_drift(engine, Base.metadata) == []


async def test_down_migration_removes_every_table(postgres_admin_url):
    remaining = await tables_after_downgrade(postgres_admin_url, "monitoring", MIGRATIONS_DIR)
    assert remaining == {"alembic_version"}
