"""The public routing table: which service answers a public path, and under which policy.

The table is the platform contract (DESIGN.md, common brief): the gateway strips ``/api`` and
sends ``/api/<prefix>/...`` to the service owning ``<prefix>``. Anything else is a 404 problem,
never a default service; ``/internal/...`` matches no prefix, before or after normalisation.
The one route outside ``/api`` is user-service's JWKS at ``/.well-known/jwks.json``.

Each match also carries a :class:`RoutePolicy`: whether a token is required, the rate-limit
class, how long the upstream may stay silent, and whether the JSON body cap applies.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from api_gateway.paths import NormalPath

if TYPE_CHECKING:
    from api_gateway.config import Settings

# /api/<prefix>/... -> service. Services serve these paths without the /api prefix.
PREFIXES: dict[str, str] = {
    "auth": "user-service",
    "users": "user-service",
    "services": "service-registry",
    "reference-panels": "service-registry",
    "workflow-profiles": "service-registry",
    "jobs": "job-processor",
    "job-templates": "job-processor",
    "scheduled-jobs": "job-processor",
    "credentials": "job-processor",  # POST /credentials/{service}/verify
    "files": "file-manager",
    "notifications": "notification",
    "monitoring": "monitoring",
    "dashboard": "monitoring",
    "status": "monitoring",
}
# Exact paths outside /api, proxied unchanged.
ROOT_ROUTES: dict[tuple[str, ...], str] = {(".well-known", "jwks.json"): "user-service"}
# The only service whose WebSocket endpoints are proxied.
WEBSOCKET_SERVICES = frozenset({"notification"})

_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


class LimitClass(StrEnum):
    LOGIN = "login"
    UPLOAD = "upload"
    DEFAULT = "default"


class Transfer(StrEnum):
    """How long an upstream may stay silent: API calls are short, file transfers are not."""

    API = "api"
    LONG = "long"


@dataclass(frozen=True, slots=True)
class RoutePolicy:
    public: bool
    limit_class: LimitClass
    transfer: Transfer
    json_body_cap: bool


@dataclass(frozen=True, slots=True)
class Target:
    """Where one request goes."""

    service: str
    upstream_path: str  # percent-encoded, query not included
    label: str  # metrics label: the public prefix, never the raw path
    policy: RoutePolicy


class RoutePattern:
    """``"<METHODS> <PATH>"``: METHODS ``*`` or ``GET|HEAD``; PATH segments may be ``*`` (one
    segment) and a final ``**`` (any number of segments, none included)."""

    __slots__ = ("methods", "regex", "text")

    def __init__(self, text: str, methods: frozenset[str] | None, regex: re.Pattern[str]) -> None:
        self.text = text
        self.methods = methods
        self.regex = regex

    @classmethod
    def parse(cls, text: str) -> RoutePattern:
        try:
            method_part, path = text.split()
        except ValueError:
            raise ValueError(f"route pattern {text!r} must be '<METHODS> <PATH>'") from None
        if not path.startswith("/"):
            raise ValueError(f"route pattern {text!r}: the path must start with '/'")
        methods = None if method_part == "*" else frozenset(method_part.upper().split("|"))
        segments = [s for s in path.split("/") if s]
        parts: list[str] = []
        for i, segment in enumerate(segments):
            if segment == "**":
                if i != len(segments) - 1:
                    raise ValueError(f"route pattern {text!r}: '**' must come last")
                parts.append("(?:/[^/]+)*")
            elif segment == "*":
                parts.append("/[^/]+")
            else:
                parts.append("/" + re.escape(segment))
        return cls(text, methods, re.compile("".join(parts) or "/"))

    def matches(self, method: str, path: str) -> bool:
        if self.methods is not None and method not in self.methods:
            return False
        return self.regex.fullmatch(path) is not None


def _patterns(texts: list[str]) -> tuple[RoutePattern, ...]:
    return tuple(RoutePattern.parse(t) for t in texts)


class RouteTable:
    """Resolves a normalised path to a :class:`Target`, or None (a 404)."""

    def __init__(
        self,
        *,
        public: list[str],
        login: list[str],
        upload: list[str],
        download: list[str],
    ) -> None:
        self._public = _patterns(public)
        self._login = _patterns(login)
        self._upload = _patterns(upload)
        self._download = _patterns(download)

    @classmethod
    def from_settings(cls, settings: Settings) -> RouteTable:
        return cls(
            public=settings.public_routes,
            login=settings.login_routes,
            upload=settings.upload_routes,
            download=settings.download_routes,
        )

    def resolve(self, method: str, path: NormalPath, *, json_body: bool = False) -> Target | None:
        segments = path.segments
        if len(segments) >= 2 and segments[0] == "api" and segments[1] in PREFIXES:
            service, upstream, label = PREFIXES[segments[1]], path.encode(1), f"/api/{segments[1]}"
        elif segments in ROOT_ROUTES:
            service, upstream, label = ROOT_ROUTES[segments], path.encode(), path.encode()
        else:
            return None
        public_path = path.encode(keep_trailing_slash=False)
        return Target(service, upstream, label, self.policy(method, public_path, json_body))

    def policy(self, method: str, public_path: str, json_body: bool) -> RoutePolicy:
        def any_match(patterns: tuple[RoutePattern, ...]) -> bool:
            return any(p.matches(method, public_path) for p in patterns)

        upload = not json_body and method in _BODY_METHODS and any_match(self._upload)
        if any_match(self._login):
            limit_class = LimitClass.LOGIN
        elif upload:
            limit_class = LimitClass.UPLOAD
        else:
            limit_class = LimitClass.DEFAULT
        long_transfer = upload or any_match(self._download)
        return RoutePolicy(
            public=any_match(self._public),
            limit_class=limit_class,
            transfer=Transfer.LONG if long_transfer else Transfer.API,
            json_body_cap=not upload,
        )
