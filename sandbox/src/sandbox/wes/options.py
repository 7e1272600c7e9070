"""Configuration of a WES simulator."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from sandbox.cloudgene.options import Panel, preset_panels
from sandbox.faults import Faults

__all__ = ["OAuthClient", "WesFlavour", "WesOptions", "WesTimings"]

WesFlavour = Literal["spec", "starter-kit", "dnastack-cromwell", "dnastack-workbench"]


class OAuthClient(BaseModel):
    client_id: str
    client_secret: str


class WesTimings(BaseModel):
    """Seconds per phase; the defaults make a demo run last about 40 s."""

    preprocessing_seconds: float = 2.0
    queued_seconds: float = 3.0
    initializing_seconds: float = 3.0
    task_seconds: float = 7.0
    canceling_seconds: float = 1.0


class WesOptions(BaseModel):
    flavour: WesFlavour = "spec"
    tokens: list[str] | None = Field(
        None,
        description="accepted bearer tokens; spec: auth is on only when given; dnastack-*: default dnastack-token",
    )
    clients: list[OAuthClient] = Field(
        default_factory=lambda: [
            OAuthClient(client_id="sandbox-client", client_secret="sandbox-secret")
        ]
    )
    namespace: str = "sandbox-namespace"
    token_ttl_seconds: int = 3600
    panels: list[Panel] = Field(default_factory=lambda: preset_panels("all"))
    publish_panels: bool = Field(
        True,
        description="spec flavour: list `panels` in service-info `tags` under "
        "`fedimpute.reference_panels`, as a FedImpute node does (the registry imports them with "
        "sync-panels). WES 1.1 service-info has a free `tags` map, so a real server may do the "
        "same; off: empty tags, as a stock WES server",
    )
    timings: WesTimings = Field(default_factory=WesTimings)
    min_samples: int = 20
    max_samples: int = 50_000
    last_page_token: Literal["null", "empty", "absent"] = Field(
        "null",
        description="spec flavour: next_page_token on the last page of GET /runs and /tasks. "
        "The spec says an empty string; sapporo sends null (the default, so clients handle it).",
    )
    faults: Faults = Field(default_factory=Faults)
    seed: int | None = None

    def accepted_tokens(self) -> list[str]:
        if self.tokens is not None:
            return self.tokens
        return ["dnastack-token"] if self.flavour.startswith("dnastack") else []

    def auth_required(self) -> bool:
        return self.flavour.startswith("dnastack") or bool(self.accepted_tokens())
