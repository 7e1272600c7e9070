"""A panel as a remote service describes it, before it is matched with our rows."""

from __future__ import annotations

import re
from dataclasses import dataclass, field


@dataclass
class RemotePanel:
    """``slug`` is the identity (no version in it); everything else is data to copy."""

    slug: str
    remote_id: str
    display_name: str
    version: str | None = None
    populations: list[str] = field(default_factory=list)
    build: str | None = None
    samples_count: int | None = None
    chromosomes: list[str] = field(default_factory=list)
    location: str | None = None


def slugify(panel_id: str) -> str:
    """Our slug for a remote panel id: lower-case, ``apps@`` and any ``@version`` removed."""
    text = panel_id.removeprefix("apps@").partition("@")[0].lower()
    return re.sub(r"[^a-z0-9._-]+", "-", text).strip("-._")[:100] or "panel"


def split_app_ref(ref: str) -> tuple[str, str | None]:
    """``apps@hrc-r1.1@1.0.0`` / ``imputationserver2@2.0.12`` -> (bare id, version or None)."""
    bare, _, version = ref.removeprefix("apps@").partition("@")
    return bare, version or None


def version_key(version: str | None) -> tuple[tuple[int, str], ...]:
    """Orders ``1.10.0`` after ``1.9.2`` (numeric parts numerically); None is oldest."""
    if not version:
        return ()
    return tuple((int(p), "") if p.isdigit() else (-1, p) for p in re.split(r"[.\-+]", version))
