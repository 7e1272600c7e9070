"""Request-path normalisation: the gateway routes on the path the upstream would see.

A path is split into segments, each percent-decoded once; ``.`` and ``..`` are resolved and
empty segments (``//``) dropped, exactly as a server behind us might do. Routing on that
normalised form is what keeps ``/api/../internal/...``, ``/api/%2e%2e/internal`` or
``//internal`` from reaching an internal route. A segment that decodes to a slash, a backslash
or a control character has no single meaning across servers, so it is refused outright.
The upstream then receives the normalised path, re-encoded: it cannot reinterpret it.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote, unquote

# RFC 3986 pchar minus "%": what may stay literal in an upstream path segment.
_SEGMENT_SAFE = "!$&'()*+,;=:@-._~"


class AmbiguousPath(ValueError):
    """A path the gateway refuses to interpret (encoded slash, control character, bad UTF-8)."""


@dataclass(frozen=True, slots=True)
class NormalPath:
    segments: tuple[str, ...]
    trailing_slash: bool

    def encode(self, start: int = 0, *, keep_trailing_slash: bool = True) -> str:
        """The path from segment ``start`` on, percent-encoded, with a leading slash."""
        body = "/".join(quote(s, safe=_SEGMENT_SAFE) for s in self.segments[start:])
        keep = keep_trailing_slash and self.trailing_slash and len(self.segments) > start
        tail = "/" if keep else ""
        return "/" + body + tail


def normalise(raw_path: bytes) -> NormalPath:
    """Decode and normalise an HTTP request path (the query, if any, is ignored)."""
    text = raw_path.split(b"?", 1)[0].decode("latin-1")
    stack: list[str] = []
    parts = text.split("/")
    for part in parts:
        segment = _decode(part)
        if segment in ("", "."):
            continue
        if segment == "..":
            if stack:
                stack.pop()
            continue
        stack.append(segment)
    trailing = len(parts) > 1 and parts[-1] == "" and bool(stack)
    return NormalPath(tuple(stack), trailing)


def _decode(part: str) -> str:
    try:
        segment = unquote(part, errors="strict")
    except UnicodeDecodeError:
        raise AmbiguousPath("the path is not valid UTF-8") from None
    if "/" in segment or "\\" in segment or any(ord(c) < 0x20 or ord(c) == 0x7F for c in segment):
        raise AmbiguousPath("the path contains an encoded slash, backslash or control character")
    return segment
