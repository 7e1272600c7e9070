"""Reading one stream entry (the format of docs/architecture.md, "The event stream") without
trusting it: bounded size, bounded nesting, fields that must agree with the payload."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

__all__ = ["Entry", "Malformed", "describe", "parse_entry", "readable_fields"]

_MAX_DEPTH = 32
_KEPT_CHARS = 4096  # of each field, in a dead letter


class Malformed(ValueError):
    """An entry that can never be processed; the message says why (no payload values)."""


@dataclass(frozen=True)
class Entry:
    stream_id: str
    event_id: uuid.UUID
    event_type: str
    version: int
    payload: dict[str, Any]


def readable_fields(fields: dict[bytes, bytes]) -> dict[str, str]:
    """An entry's fields as text, each cut to a bounded length (for dead letters)."""
    return {
        key.decode("utf-8", "replace")[:100]: value.decode("utf-8", "replace")[:_KEPT_CHARS]
        for key, value in list(fields.items())[:20]
    }


def _depth(value: Any, level: int = 1) -> int:
    if level > _MAX_DEPTH:
        return level
    if isinstance(value, dict):
        return max((_depth(v, level + 1) for v in value.values()), default=level)
    if isinstance(value, list):
        return max((_depth(v, level + 1) for v in value), default=level)
    return level


def _field(fields: dict[bytes, bytes], name: str) -> str:
    raw = fields.get(name.encode())
    if raw is None:
        raise Malformed(f"the entry has no {name!r} field")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise Malformed(f"the {name!r} field is not UTF-8") from None


def _payload(fields: dict[bytes, bytes], max_bytes: int) -> dict[str, Any]:
    raw = fields.get(b"payload")
    if raw is None:
        raise Malformed("the entry has no 'payload' field")
    if len(raw) > max_bytes:
        raise Malformed(f"the payload has {len(raw)} bytes, more than the {max_bytes} allowed")
    try:
        payload = json.loads(raw)
    except (ValueError, RecursionError):
        raise Malformed("the payload is not JSON") from None
    if not isinstance(payload, dict):
        raise Malformed("the payload is not a JSON object")
    if _depth(payload) > _MAX_DEPTH:
        raise Malformed(f"the payload nests deeper than {_MAX_DEPTH} levels")
    return payload


def parse_entry(stream_id: str, fields: dict[bytes, bytes], max_bytes: int) -> Entry:
    """The entry's envelope and payload, checked against each other."""
    payload = _payload(fields, max_bytes)
    event_type = _field(fields, "event_type")
    try:
        event_id = uuid.UUID(_field(fields, "event_id"))
        version = int(_field(fields, "version"))
    except ValueError:
        raise Malformed("event_id must be a UUID and version an integer") from None
    if payload.get("event_type") != event_type or str(payload.get("event_id")) != str(event_id):
        raise Malformed("the payload's event_type or event_id differs from the entry's")
    if payload.get("version", version) != version:
        raise Malformed("the payload's version differs from the entry's")
    return Entry(stream_id, event_id, event_type, version, payload)


def describe(error: ValidationError) -> str:
    """A validation error as field names and messages, never the values (they may be secret)."""
    problems = [
        f"{'.'.join(str(p) for p in item['loc']) or 'payload'}: {item['msg']}"
        for item in error.errors(include_input=False)
    ]
    return "the payload does not match the event's contract: " + "; ".join(problems[:10])
