from fedimpute_shared.migrations import run_migrations
from notification_service.models import Base

run_migrations(Base.metadata)
