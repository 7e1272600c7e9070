"""Adapters: one module per remote protocol behind the interface in `base`.

`adapter_for(service_type, client)` returns the adapter of a registry service kind. Build the
adapters once per process (`Adapters(client)` does that) and reuse them: the DNAstack adapter
caches OAuth2 tokens per client id, and every adapter shares the caller's connection pool.
"""

from __future__ import annotations

from pathlib import Path

import httpx

from job_processor.adapters.base import Adapter, NotSubmittable
from job_processor.adapters.dnastack import DnastackAdapter
from job_processor.adapters.ga4gh_wes import WesAdapter
from job_processor.adapters.michigan import MichiganAdapter

__all__ = ["SERVICE_TYPES", "Adapters", "adapter_for"]

_ADAPTERS: dict[str, type[MichiganAdapter] | type[WesAdapter] | type[DnastackAdapter]] = {
    "michigan": MichiganAdapter,
    "ga4gh_wes": WesAdapter,
    "dnastack": DnastackAdapter,
}
SERVICE_TYPES = frozenset(_ADAPTERS)


def adapter_for(
    service_type: str, client: httpx.AsyncClient, *, workdir: Path | None = None
) -> Adapter:
    """A new adapter for a registry service kind; an unknown kind is `NotSubmittable`."""
    cls = _ADAPTERS.get(service_type)
    if cls is None:
        raise NotSubmittable(f"No adapter speaks the service kind {service_type!r}.")
    adapter: Adapter = cls(client, workdir=workdir)
    return adapter


class Adapters:
    """One adapter per service kind for the life of the process (token caches survive)."""

    def __init__(self, client: httpx.AsyncClient, *, workdir: Path | None = None) -> None:
        self.client = client
        self.workdir = workdir
        self._built: dict[str, Adapter] = {}

    def get(self, service_type: str) -> Adapter:
        if service_type not in self._built:
            self._built[service_type] = adapter_for(service_type, self.client, workdir=self.workdir)
        return self._built[service_type]
