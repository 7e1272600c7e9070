from fedimpute_shared.migrations import run_migrations
from service_registry.models import Base

run_migrations(Base.metadata)
