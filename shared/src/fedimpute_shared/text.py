"""Text input types that are safe to store in PostgreSQL and to show back.

Text is stored and returned exactly as given (HTML and SQL included: it is data, bound as a
parameter and served as JSON, never interpolated or rendered). What is refused, because
PostgreSQL cannot store it or it hides content: the NUL character (rejected by ``text`` and
``jsonb``), an unpaired UTF-16 surrogate (JSON's ``"\\ud800"`` escape decodes to a code point
that has no UTF-8 encoding, so the driver fails), and, in single-line fields such as names, any
other control character.

Integers bound for an ``integer`` (int4) column are :data:`Int32`-bounded: a larger number is a
422, not a driver error. :class:`PatchInput` is the base of PATCH bodies, where a left-out field
is unchanged and ``null`` clears only a field that may be empty.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Annotated, Any, ClassVar

from pydantic import (
    AfterValidator,
    BaseModel,
    Field,
    GetJsonSchemaHandler,
    StringConstraints,
    model_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

__all__ = [
    "INT32_MAX",
    "Int32",
    "Line",
    "Line100",
    "Line200",
    "NoNul",
    "PatchInput",
    "SafeInput",
    "Secret",
    "ascii_count",
    "no_nul_anywhere",
]

INT32_MAX = 2**31 - 1
Int32 = Annotated[int, Field(ge=-(2**31), le=INT32_MAX)]
"""An integer that fits PostgreSQL's ``integer`` column; narrow it further beside it."""

_SURROGATE = re.compile("[\ud800-\udfff]")
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
    if _SURROGATE.search(value):
        raise ValueError("must not contain an unpaired UTF-16 surrogate (not valid Unicode text)")
    return value


def no_nul_anywhere(value: Any) -> Any:
    """Check every string (keys included) of a JSON-like value for NUL characters and
    unpaired surrogates: what PostgreSQL cannot store."""
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
    """Base of every request model: no NUL character and no unpaired surrogate anywhere
    (PostgreSQL cannot store them, and a query with one would fail as a 500 instead of a clear
    422)."""

    @model_validator(mode="before")
    @classmethod
    def _no_nul(cls, data: Any) -> Any:
        return no_nul_anywhere(data)


class PatchInput(SafeInput):
    """Base of a PATCH body: every field optional, a field left out stays as it is.

    Fields are declared ``X | None = None`` (so "left out" has a value), but ``null`` is a
    value a client may send: it is accepted only for the fields listed in ``nullable`` (those
    the stored object may have empty, which ``null`` clears) and refused with a 422 for the
    others, whose column cannot be empty; the OpenAPI document says the same (no ``null`` for
    them), so clients and the fuzzer see the real contract.
    """

    nullable: ClassVar[frozenset[str]] = frozenset()

    @model_validator(mode="after")
    def _no_null_for_required_fields(self) -> Any:
        refused = sorted(
            name
            for name in self.model_fields_set
            if getattr(self, name) is None and name not in self.nullable
        )
        if refused:
            raise ValueError(
                f"{', '.join(refused)} cannot be null; leave a field out to keep its value"
            )
        return self

    @classmethod
    def __get_pydantic_json_schema__(
        cls, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        schema = handler(core_schema)
        target = handler.resolve_ref_schema(schema)
        for name, prop in (target.get("properties") or {}).items():
            if name in cls.nullable or not isinstance(prop.get("anyOf"), list):
                continue
            options = [o for o in prop["anyOf"] if o != {"type": "null"}]
            prop.pop("default", None)
            if len(options) == 1 and not set(options[0]) & set(prop):
                del prop["anyOf"]
                prop.update(options[0])
            else:
                prop["anyOf"] = options
        return schema
