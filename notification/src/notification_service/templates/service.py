"""Which template is in force (an admin's version, else the shipped default) and rendering
with it; an admin's version that fails on a real event falls back to the default, so a
mistake never loses a notification."""

from __future__ import annotations

import functools
import logging
import tomllib
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from fedimpute_shared.problems import NotFound, Unprocessable
from notification_service.models import Channel, TemplateOverride
from notification_service.templates.engine import PARTS, RenderError, render_parts
from notification_service.templates.samples import sample_context

__all__ = [
    "EffectiveTemplate",
    "default_templates",
    "effective",
    "preview",
    "remove_override",
    "render",
    "save_override",
    "wrap_html",
]

logger = logging.getLogger(__name__)

DEFAULTS_DIR = Path(__file__).parent / "defaults"

_LAYOUT = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{subject}</title></head>
<body style="font-family: sans-serif; line-height: 1.5; color: #222; max-width: 40em;">
{content}
<hr style="border: none; border-top: 1px solid #ddd;">
<p style="color: #777; font-size: small;">FedImpute: federated genotype imputation.</p>
</body></html>
"""


@dataclass(frozen=True)
class EffectiveTemplate:
    event_type: str
    channel: Channel
    parts: dict[str, str]
    custom: bool
    default: dict[str, str]


@functools.cache
def default_templates() -> dict[tuple[str, Channel], dict[str, str]]:
    """Every shipped template, by (event type or ``digest``, channel)."""
    found: dict[tuple[str, Channel], dict[str, str]] = {}
    for path in sorted(DEFAULTS_DIR.glob("*.toml")):
        with path.open("rb") as file:
            for channel, parts in tomllib.load(file).items():
                found[(path.stem, Channel(channel))] = {k: str(v) for k, v in parts.items()}
    return found


def _default(event_type: str, channel: Channel) -> dict[str, str]:
    try:
        return default_templates()[(event_type, channel)]
    except KeyError:
        raise NotFound(f"there is no {channel} template for {event_type}") from None


async def effective(session: AsyncSession, event_type: str, channel: Channel) -> EffectiveTemplate:
    default = _default(event_type, channel)
    override = await session.get(TemplateOverride, (event_type, channel))
    if override is None:
        return EffectiveTemplate(event_type, channel, default, False, default)
    return EffectiveTemplate(event_type, channel, dict(override.parts), True, default)


async def render(
    session: AsyncSession, event_type: str, channel: Channel, context: Mapping[str, Any]
) -> dict[str, str]:
    """``event_type``'s ``channel`` parts rendered with ``context``."""
    template = await effective(session, event_type, channel)
    try:
        return render_parts(channel, template.parts, context)
    except RenderError as exc:
        if not template.custom:
            raise
        logger.warning(
            "custom template failed; the default was used",
            extra={"event_type": event_type, "channel": str(channel), "error": str(exc)},
        )
        return render_parts(channel, template.default, context)


def _checked(event_type: str, channel: Channel, parts: Mapping[str, str], app_url: str) -> None:
    unknown = set(parts) - set(PARTS[channel])
    if unknown:
        raise Unprocessable(f"{channel} templates have no part(s): {', '.join(sorted(unknown))}")
    try:
        render_parts(channel, parts, sample_context(event_type, app_url))
    except RenderError as exc:
        raise Unprocessable(f"the template does not render with sample data: {exc}") from None


async def save_override(
    session: AsyncSession,
    event_type: str,
    channel: Channel,
    parts: dict[str, str],
    *,
    admin_id: uuid.UUID,
    app_url: str,
) -> EffectiveTemplate:
    """Store an admin's version after it rendered with sample data (422 otherwise)."""
    _default(event_type, channel)
    _checked(event_type, channel, parts, app_url)
    override = await session.get(TemplateOverride, (event_type, channel))
    if override is None:
        override = TemplateOverride(event_type=event_type, channel=channel)
        session.add(override)
    override.parts, override.updated_by = parts, admin_id
    await session.flush()
    return await effective(session, event_type, channel)


async def remove_override(session: AsyncSession, event_type: str, channel: Channel) -> None:
    _default(event_type, channel)
    override = await session.get(TemplateOverride, (event_type, channel))
    if override is not None:
        await session.delete(override)
        await session.flush()


async def preview(
    session: AsyncSession,
    event_type: str,
    channel: Channel,
    draft: dict[str, str] | None,
    app_url: str,
) -> dict[str, str]:
    """The template in force (or ``draft``) rendered with sample data."""
    template = await effective(session, event_type, channel)
    parts = template.parts | (draft or {})
    _checked(event_type, channel, parts, app_url)
    rendered = render_parts(channel, parts, sample_context(event_type, app_url))
    if channel is Channel.EMAIL:
        rendered["html"] = wrap_html(rendered["subject"], rendered["html"])
    return rendered


def wrap_html(subject: str, content: str) -> str:
    """An email's HTML part inside the fixed layout (``content`` is already escaped)."""
    from html import escape

    return _LAYOUT.format(subject=escape(subject), content=content)
