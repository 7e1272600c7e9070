"""Configuration of a Cloudgene simulator: flavour, apps, panels, users, limits and timings."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from sandbox.faults import Faults
from sandbox.users import User, default_users

__all__ = [
    "PRESETS",
    "CloudgeneOptions",
    "CloudgeneTimings",
    "Panel",
    "Population",
    "preset_panels",
]


class Population(BaseModel):
    id: str
    name: str


class Panel(BaseModel):
    """A reference panel app (Cloudgene category `RefPanel`), listed as `apps@<id>@<version>`."""

    id: str
    version: str = "1.0.0"
    name: str
    build: Literal["hg19", "hg38"]
    populations: list[Population]
    min_snps: int = Field(
        3, description="QC: fewer valid variants excludes a chunk (qcFilter.minSnps)"
    )

    @property
    def key(self) -> str:
        return f"apps@{self.id}@{self.version}"


def _pops(*pairs: tuple[str, str]) -> list[Population]:
    return [Population(id=i, name=n) for i, n in pairs]


_MIXED = ("mixed", "Other/Mixed")
_PANELS = {
    "1000g-phase-3-v5": Panel(
        id="1000g-phase-3-v5",
        version="2.0.0",
        name="1000G Phase 3 (GRCh37/hg19)",
        build="hg19",
        populations=_pops(
            ("afr", "AFR"), ("amr", "AMR"), ("eas", "EAS"), ("eur", "EUR"), ("sas", "SAS"), _MIXED
        ),
    ),
    "hrc-r1.1": Panel(
        id="hrc-r1.1",
        version="2.0.0",
        name="HRC r1.1 2016 (GRCh37/hg19)",
        build="hg19",
        populations=_pops(("eur", "EUR"), _MIXED),
        min_snps=20,
    ),
    "topmed-r3": Panel(
        id="topmed-r3",
        version="1.0.0",
        name="TOPMed r3 (GRCh38/hg38)",
        build="hg38",
        populations=_pops(("all", "ALL")),
    ),
    "h3africa-v6hc-s": Panel(
        id="h3africa-v6hc-s",
        version="1.0.0",
        name="H3Africa v6 high coverage (GRCh38/hg38)",
        build="hg38",
        populations=_pops(("afr", "AFR"), _MIXED),
    ),
}

# Which panels and app ids each public server offers (spec §4.3, §5, §6).
PRESETS: dict[str, tuple[list[str], list[str]]] = {
    "michigan": (["1000g-phase-3-v5", "hrc-r1.1"], ["imputationserver2"]),
    "topmed": (["topmed-r3"], ["imputationserver2", "imputationserver"]),
    "afrigen": (["h3africa-v6hc-s", "1000g-phase-3-v5"], ["imputationserver2"]),
    "all": (list(_PANELS), ["imputationserver2"]),
}


def preset_panels(name: str) -> list[Panel]:
    return [_PANELS[p].model_copy() for p in PRESETS[name][0]]


class CloudgeneTimings(BaseModel):
    """Seconds per phase. The defaults let a demo job go from queue to success in about 40 s."""

    queue_seconds: float = 5.0
    step_seconds: float = 8.0
    export_seconds: float = 3.0
    notify_after_seconds: float | None = Field(
        None, description="success/failed -> 8/9 (None: never)"
    )
    retire_after_seconds: float | None = Field(
        None, description="-> 7 retired, results deleted (None: never)"
    )


class CloudgeneOptions(BaseModel):
    """Everything a Cloudgene simulator can be told; the CLI and the fixtures build this."""

    flavour: Literal["cg3", "cg2"] = "cg3"
    name: str = "Michigan Imputation Server (sandbox)"
    app_ids: list[str] | None = Field(
        None, description="default: imputationserver2 (cg3), imputationserver (cg2)"
    )
    app_name: str = "Genotype Imputation"
    app_version: str | None = Field(None, description="default: 2.0.12 (cg3), 1.8.0 (cg2)")
    panels: list[Panel] = Field(default_factory=lambda: preset_panels("all"))
    users: list[User] = Field(default_factory=lambda: default_users("cloudgene-token"))
    timings: CloudgeneTimings = Field(default_factory=CloudgeneTimings)
    max_running_jobs_per_user: int = 2
    max_parallel_jobs: int = 2
    max_downloads: int = 10
    min_samples: int = 20
    max_samples: int = 50_000
    contact_name: str = "Admin"
    contact_email: str = "admin@localhost"
    maintenance: bool = False
    anonymous_apps: bool = Field(
        False,
        description="cg3: show apps to anonymous callers (GET /api/v2/server lists them, the app "
        "form answers). Off = the strict behaviour of recent Cloudgene 3 releases: no apps "
        "listed and a 401 app form without a token.",
    )
    download_redirect: bool | None = Field(
        None,
        description="downloads answer 302 to an object-store URL (a Cloudgene 3 server with an "
        "S3 workspace does). Default: on for cg3, off for cg2.",
    )
    faults: Faults = Field(default_factory=Faults)
    seed: int | None = None

    def resolved_app_ids(self) -> list[str]:
        return self.app_ids or (
            ["imputationserver2"] if self.flavour == "cg3" else ["imputationserver"]
        )

    def resolved_app_version(self) -> str:
        return self.app_version or ("2.0.12" if self.flavour == "cg3" else "1.8.0")

    def resolve_app(self, ref: str) -> str | None:
        """The bare app id for ``ref`` (bare, or ``id@version`` with this server's version), as
        Cloudgene 3's ``ApplicationRepository.getById`` accepts both."""
        bare, _, version = ref.partition("@")
        if bare not in self.resolved_app_ids():
            return None
        return bare if not version or version == self.resolved_app_version() else None

    def redirects_downloads(self) -> bool:
        return (
            self.download_redirect if self.download_redirect is not None else self.flavour == "cg3"
        )
