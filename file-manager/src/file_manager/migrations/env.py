from fedimpute_shared.migrations import run_migrations
from file_manager.models import Base

run_migrations(Base.metadata)
