"""Live-push bodies."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel


class TicketOut(BaseModel):
    ticket: str
    expires_at: datetime
