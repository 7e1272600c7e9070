from fedimpute_shared.migrations import run_migrations
from job_processor.models import Base

run_migrations(Base.metadata)
