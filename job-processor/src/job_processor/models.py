"""job-processor tables."""

from __future__ import annotations

from sqlalchemy.orm import DeclarativeBase

from fedimpute_shared.db import new_metadata
from fedimpute_shared.events import OutboxEvent as OutboxEventMixin


class Base(DeclarativeBase):
    metadata = new_metadata()


class OutboxEvent(OutboxEventMixin, Base):
    """Job events waiting for the relay (job.status_changed, job.completed, ...)."""
