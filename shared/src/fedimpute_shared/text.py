"""Text input types that are safe to store in PostgreSQL and to show back.

Text is stored and returned exactly as given (HTML and SQL included: it is data, bound as a
parameter and served as JSON, never interpolated or rendered). Two things are refused because
PostgreSQL cannot store them or they hide content: the NUL character (rejected by ``text`` and
``jsonb``), and, in single-line fields such as names, any other control character.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, StringConstraints, model_validator

__all__ = [
    "Line",
    "Line100",
    "Line200",
    "NoNul",
    "SafeInput",
    "Secret",
    "ascii_count",
    "no_nul_anywhere",
]


_ASCII_COUNT = re.compile(r"[0-9]{1,18}")


def ascii_count(value: str | None) -> int | None:
    """A non-negative integer header or parameter written in ASCII digits, else None.

    ``str.isdigit`` accepts "²" or Arabic-Indic digits that ``int`` then refuses (a 500), and
    ``int`` refuses more than 4300 digits; this takes ``[0-9]{1,18}`` only (under 2**63), so the
    caller can answer 400 for anything else.
    """
    if value is None or _ASCII_COUNT.fullmatch(value) is None:
        return None
    return int(value)


def _single_line(value: str) -> str:
    if any(unicodedata.category(ch) == "Cc" for ch in value):
        raise ValueError("must not contain control characters")
    return value


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain the NUL character")
    return value


def no_nul_anywhere(value: Any) -> Any:
    """Check every string (keys included) of a JSON-like value for NUL characters."""
    if isinstance(value, str):
        _no_nul(value)
    elif isinstance(value, dict):
        for key, item in value.items():
            no_nul_anywhere(key)
            no_nul_anywhere(item)
    elif isinstance(value, list):
        for item in value:
            no_nul_anywhere(item)
    return value


_LINE = AfterValidator(_single_line)
_STRIP = StringConstraints(strip_whitespace=True)

NoNul = Annotated[str, AfterValidator(_no_nul)]
"""Any text (several lines allowed) without the NUL character; add length bounds beside it."""

Line = Annotated[str, _STRIP, _LINE]
"""A single line: stripped, no control characters; add bounds (``Annotated[Line, Field(...)]``)."""

# Single lines of text: stripped, bounded, no control characters.
Line100 = Annotated[str, _STRIP, StringConstraints(min_length=1, max_length=100), _LINE]
Line200 = Annotated[str, _STRIP, StringConstraints(max_length=200), _LINE]

Secret = Annotated[str, StringConstraints(min_length=1, max_length=4096), AfterValidator(_no_nul)]
"""A credential value: kept byte for byte (no stripping), never empty, no NUL."""


class SafeInput(BaseModel):
    """Base of every request model: no NUL character anywhere (PostgreSQL cannot store one,
    and a query with one would fail as a 500 instead of a clear 422)."""

    @model_validator(mode="before")
    @classmethod
    def _no_nul(cls, data: Any) -> Any:
        return no_nul_anywhere(data)
