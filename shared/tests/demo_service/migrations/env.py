from sqlalchemy import MetaData

from fedimpute_shared.migrations import run_migrations

run_migrations(MetaData())
