from fedimpute_shared.migrations import run_migrations
from monitoring_service.models import Base

run_migrations(Base.metadata)
