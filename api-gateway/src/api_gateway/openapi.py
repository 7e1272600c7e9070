"""One OpenAPI document for the public API, merged from the services' own specs.

Each service's ``/openapi.json`` is fetched through the upstream pools; its paths are rewritten
to what the public calls (``/services/{id}`` → ``/api/services/{id}``), and paths the gateway
does not route (``/internal/...``, ``/health``, ``/ready``, ``/metrics``, anything outside the
service's prefixes) are left out. Components are merged by name: identical definitions (the
shared ``Problem``...) are kept once; a name two services define differently is renamed
``<service>.<Name>`` in each, and so is anything that refers to such a name, with every
``$ref`` rewritten. Duplicate ``operationId``s get the service as prefix.

The merged document is rebuilt in the background: every ``refresh`` seconds, or every
``retry`` seconds while a service has not answered (its last good spec is kept meanwhile).
"""

from __future__ import annotations

import asyncio
import copy
import logging
from collections.abc import Iterable, Mapping
from typing import Any

import httpx

from api_gateway.routes import PREFIXES, ROOT_ROUTES
from api_gateway.upstreams import NoHealthyUpstream
from fedimpute_shared.problems import document_problems

logger = logging.getLogger(__name__)

Spec = dict[str, Any]
_HTTP_METHODS = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})
_REF_PREFIX = "#/components/"
_FETCH_TIMEOUT = httpx.Timeout(5.0, connect=2.0)
# What the gateway itself may answer for any public operation, whatever the service documents.
GATEWAY_PROBLEMS = {
    429: "Rate limit exceeded (Retry-After says when to try again)",
    502: "The service is unreachable or sent an invalid response",
    503: "No healthy instance of the service, or the gateway is busy",
    504: "The service did not answer in time",
}


def public_path(service: str, path: str) -> str | None:
    """The public path of a service path, or None when the gateway does not route it."""
    segments = tuple(s for s in path.split("/") if s)
    if not segments:
        return None
    if PREFIXES.get(segments[0]) == service:
        return "/api" + path
    if ROOT_ROUTES.get(segments) == service:
        return path
    return None


def _refs(node: Any) -> Iterable[tuple[str, str]]:
    """Every ``(section, name)`` a node refers to."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str) and value.startswith(_REF_PREFIX):
                section, _, name = value[len(_REF_PREFIX) :].partition("/")
                yield section, name
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


def _rewrite(node: Any, renames: Mapping[tuple[str, str], str]) -> Any:
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str) and value.startswith(_REF_PREFIX):
                section, _, name = value[len(_REF_PREFIX) :].partition("/")
                out[key] = f"{_REF_PREFIX}{section}/{renames.get((section, name), name)}"
            else:
                out[key] = _rewrite(value, renames)
        return out
    if isinstance(node, list):
        return [_rewrite(item, renames) for item in node]
    return node


def _colliding(specs: Mapping[str, Spec]) -> set[tuple[str, str]]:
    """Component names whose meaning differs between the services that define them."""
    definitions: dict[tuple[str, str], dict[str, Any]] = {}
    for service, spec in specs.items():
        for section, components in (spec.get("components") or {}).items():
            for name, body in (components or {}).items():
                definitions.setdefault((section, name), {})[service] = body
    shared = {key: by_service for key, by_service in definitions.items() if len(by_service) > 1}
    colliding = {
        key for key, by_service in shared.items() if len({repr(b) for b in by_service.values()}) > 1
    }
    changed = True
    while changed:  # a definition referring to a colliding name now means different things
        changed = False
        for key, by_service in shared.items():
            if key not in colliding and any(
                ref in colliding for body in by_service.values() for ref in _refs(body)
            ):
                colliding.add(key)
                changed = True
    return colliding


def merge_specs(specs: Mapping[str, Spec], *, title: str, version: str, description: str) -> Spec:
    """The public document built from ``{service: its openapi.json}``."""
    colliding = _colliding(specs)
    paths: dict[str, Any] = {}
    components: dict[str, dict[str, Any]] = {}
    tags: dict[str, dict[str, Any]] = {}
    operation_ids: set[str] = set()
    for service in sorted(specs):
        spec = specs[service]
        renames = {key: f"{service}.{key[1]}" for key in colliding}
        for path, item in (spec.get("paths") or {}).items():
            public = public_path(service, path)
            if public is None or not isinstance(item, dict):
                continue
            item = _rewrite(copy.deepcopy(item), renames)
            for method, operation in item.items():
                if method in _HTTP_METHODS and isinstance(operation, dict):
                    _unique_operation_id(operation, service, operation_ids)
            paths[public] = item
        for section, section_components in (spec.get("components") or {}).items():
            target = components.setdefault(section, {})
            for name, body in (section_components or {}).items():
                target[renames.get((section, name), name)] = _rewrite(body, renames)
        for tag in spec.get("tags") or []:
            if isinstance(tag, dict) and "name" in tag:
                tags.setdefault(tag["name"], tag)
    document: Spec = {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version, "description": description},
        "paths": dict(sorted(paths.items())),
        "components": {section: dict(sorted(c.items())) for section, c in components.items()},
    }
    if tags:
        document["tags"] = list(tags.values())
    return document_problems(document, every_operation=GATEWAY_PROBLEMS)


def _unique_operation_id(operation: dict[str, Any], service: str, seen: set[str]) -> None:
    operation_id = operation.get("operationId")
    if not isinstance(operation_id, str):
        return
    if operation_id in seen:
        operation_id = f"{service}.{operation_id}"
        operation["operationId"] = operation_id
    seen.add(operation_id)


class OpenAPICache:
    """The current merged document (what ``GET /api/openapi.json`` returns)."""

    def __init__(self, *, title: str, version: str, description: str) -> None:
        self._meta = {"title": title, "version": version, "description": description}
        self._specs: dict[str, Spec] = {}
        self.unavailable: set[str] = set()
        self._document = self._build()

    def document(self) -> Spec:
        return self._document

    def _build(self) -> Spec:
        document = merge_specs(self._specs, **self._meta)
        document["x-fedimpute-unavailable-services"] = sorted(self.unavailable)
        return document

    async def refresh(self, client: httpx.AsyncClient, services: Iterable[str]) -> bool:
        """Fetch every service's spec and rebuild; True when all of them answered."""
        names = list(services)
        results = await asyncio.gather(*(self._fetch(client, s) for s in names))
        previously = self.unavailable
        self.unavailable = set()
        for service, spec in zip(names, results, strict=True):
            if spec is None:
                self.unavailable.add(service)
            else:
                self._specs[service] = spec
        # Log changes only: a service not deployed yet would otherwise log every retry.
        for service in sorted(self.unavailable - previously):
            logger.info("no OpenAPI document from %s; retrying in the background", service)
        for service in sorted(previously - self.unavailable):
            logger.info("OpenAPI document of %s merged", service)
        self._document = self._build()
        return not self.unavailable

    async def _fetch(self, client: httpx.AsyncClient, service: str) -> Spec | None:
        try:
            response = await client.get(f"http://{service}/openapi.json", timeout=_FETCH_TIMEOUT)
            response.raise_for_status()
            spec = response.json()
        except (httpx.HTTPError, NoHealthyUpstream, ValueError):
            return None
        return spec if isinstance(spec, dict) else None

    async def run(
        self,
        client: httpx.AsyncClient,
        services: Iterable[str],
        *,
        refresh_seconds: float,
        retry_seconds: float,
    ) -> None:
        names = list(services)
        while True:
            complete = await self.refresh(client, names)
            await asyncio.sleep(refresh_seconds if complete else retry_seconds)
