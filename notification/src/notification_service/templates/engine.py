"""Rendering templates in Jinja2's sandbox.

Templates are edited by administrators, so they are untrusted code: they run in
``ImmutableSandboxedEnvironment`` (no attribute access to internals, no mutation of the
context, ``range`` capped), see only the context we build (never a secret: see
``context.py``), are bounded in source and output size, and an unknown variable is an error
(``StrictUndefined``) so a typo fails at save time instead of mailing a blank.

A template is a set of *parts* per channel: in-app ``title`` and ``body``; email ``subject``,
``text`` and ``html`` (``html`` is autoescaped, then placed in the fixed email layout);
webhook ``text`` (the Slack ``text`` and the generic payload's ``summary``).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from notification_service.models import Channel

__all__ = [
    "MAX_OUTPUT_CHARS",
    "MAX_SOURCE_CHARS",
    "PARTS",
    "SINGLE_LINE_PARTS",
    "RenderError",
    "render_parts",
]

PARTS: dict[Channel, tuple[str, ...]] = {
    Channel.IN_APP: ("title", "body"),
    Channel.EMAIL: ("subject", "text", "html"),
    Channel.WEBHOOK: ("text",),
}
SINGLE_LINE_PARTS = frozenset({"title", "subject"})
MAX_SOURCE_CHARS = 20_000
MAX_OUTPUT_CHARS = 100_000
_MAX_LINE_CHARS = 200


class RenderError(ValueError):
    """A template that does not compile or render; the message names the part."""


def _small_range(*args: int) -> range:
    """``range`` for templates: at most 1000 items (the sandbox's own cap is 100,000)."""
    numbers = range(*args)
    if len(numbers) > 1000:
        raise RenderError("range() is limited to 1000 items in templates")
    return numbers


def _when(value: Any) -> str:
    """An ISO 8601 time from an event as people read it: ``2026-12-01 09:00 UTC``."""
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        return str(value)
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def _environment(*, html: bool) -> ImmutableSandboxedEnvironment:
    env = ImmutableSandboxedEnvironment(
        undefined=StrictUndefined,
        autoescape=html,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )
    env.globals["range"] = _small_range
    env.filters["when"] = _when
    return env


_TEXT = _environment(html=False)
_HTML = _environment(html=True)


@functools.lru_cache(maxsize=512)
def _compile(source: str, html: bool) -> Any:
    return (_HTML if html else _TEXT).from_string(source)


def _render_one(part: str, source: str, context: Mapping[str, Any]) -> str:
    if len(source) > MAX_SOURCE_CHARS:
        raise RenderError(f"{part}: the template is longer than {MAX_SOURCE_CHARS} characters")
    try:
        output = str(_compile(source, part == "html").render(context))
    except RenderError as exc:
        raise RenderError(f"{part}: {exc}") from None
    except (TemplateError, TypeError, ValueError, ArithmeticError, LookupError) as exc:
        raise RenderError(f"{part}: {type(exc).__name__}: {exc}") from None
    if len(output) > MAX_OUTPUT_CHARS:
        raise RenderError(f"{part}: the rendered text is longer than {MAX_OUTPUT_CHARS}")
    if part in SINGLE_LINE_PARTS:
        output = " ".join(output.split())[:_MAX_LINE_CHARS]
        if not output:
            raise RenderError(f"{part}: renders to an empty line")
    return output.strip() + ("\n" if part == "text" else "")


def render_parts(
    channel: Channel, parts: Mapping[str, str], context: Mapping[str, Any]
) -> dict[str, str]:
    """Every part of ``channel`` rendered with ``context``; :class:`RenderError` if one fails
    or is missing."""
    missing = [p for p in PARTS[channel] if p not in parts]
    if missing:
        raise RenderError(f"missing part(s): {', '.join(missing)}")
    return {part: _render_one(part, parts[part], context) for part in PARTS[channel]}
