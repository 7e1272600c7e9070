"""How services are ranked for a request. Pure functions, so every weight is testable.

Each service gets a score out of 100 made of five parts, each reported with its reason:

| part          | weight | 1.0 when                                                        |
|---------------|-------:|-----------------------------------------------------------------|
| health        |     35 | healthy (degraded 0.6, never checked 0.3, unhealthy/timeout 0)  |
| panel         |     30 | it offers the wanted panel / population in the wanted build     |
| limits        |     15 | the sample count is within its known bounds (unknown: 0.7)      |
| distance      |     10 | it is near the user (same country 1.0; 2,000 km halves it)      |
| response time |     10 | it answers fast (1 s halves it)                                 |

A service that cannot take the request at all (inactive, sample count outside its bounds, no
available panel for a panel or population that was asked for) is listed under ``excluded`` with
the reason instead of being ranked: a user sees why it is not offered.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from service_registry.models import HealthStatus, ImputationService, ReferencePanel

WEIGHTS = {"health": 35.0, "panel": 30.0, "limits": 15.0, "distance": 10.0, "response_time": 10.0}
HEALTH_SCORES = {
    HealthStatus.HEALTHY: 1.0,
    HealthStatus.DEGRADED: 0.6,
    HealthStatus.UNKNOWN: 0.3,
    HealthStatus.UNHEALTHY: 0.0,
    HealthStatus.TIMEOUT: 0.0,
}
HALF_DISTANCE_KM = 2000.0
HALF_RESPONSE_MS = 1000.0
EARTH_RADIUS_KM = 6371.0


@dataclass(frozen=True)
class Request:
    build: str | None = None
    panel: str | None = None
    population: str | None = None
    samples: int | None = None
    latitude: float | None = None
    longitude: float | None = None
    country: str | None = None


@dataclass(frozen=True)
class Part:
    score: float  # 0..1
    weight: float
    reason: str

    @property
    def points(self) -> float:
        return round(self.score * self.weight, 2)


@dataclass(frozen=True)
class Ranked:
    service: ImputationService
    parts: dict[str, Part]
    matching_panels: list[ReferencePanel]

    @property
    def score(self) -> float:
        return round(sum(p.points for p in self.parts.values()), 2)


@dataclass(frozen=True)
class Excluded:
    service: ImputationService
    reason: str


def evaluate(
    service: ImputationService, panels: list[ReferencePanel], req: Request
) -> Ranked | Excluded:
    if not service.is_active:
        return Excluded(service, "the service is not active")
    if reason := _sample_refusal(service, req.samples):
        return Excluded(service, reason)
    matching = _matching_panels(panels, req)
    if (req.panel or req.population) and not matching:
        wanted = " and ".join(
            w
            for w in (
                f"panel {req.panel!r}" if req.panel else "",
                f"population {req.population!r}" if req.population else "",
            )
            if w
        )
        return Excluded(service, f"no available panel matches {wanted}")
    parts = {
        "health": _health(service),
        "panel": _panel(service, matching, req),
        "limits": _limits(service, req.samples),
        "distance": _distance(service, req),
        "response_time": _response_time(service),
    }
    return Ranked(service, parts, matching)


def rank(
    candidates: list[tuple[ImputationService, list[ReferencePanel]]], req: Request
) -> tuple[list[Ranked], list[Excluded]]:
    ranked: list[Ranked] = []
    excluded: list[Excluded] = []
    for service, panels in candidates:
        outcome = evaluate(service, panels, req)
        (ranked if isinstance(outcome, Ranked) else excluded).append(outcome)  # type: ignore[arg-type]
    ranked.sort(key=lambda r: (-r.score, r.service.name))
    return ranked, excluded


def _sample_refusal(service: ImputationService, samples: int | None) -> str | None:
    if samples is None:
        return None
    if service.min_samples and samples < service.min_samples:
        return f"needs at least {service.min_samples} samples (you have {samples})"
    if service.max_samples and samples > service.max_samples:
        return f"takes at most {service.max_samples} samples (you have {samples})"
    return None


def _panel_named(panel: ReferencePanel, wanted: str) -> bool:
    wanted = wanted.lower()
    return wanted in (panel.slug.lower(), panel.remote_id.lower(), panel.display_name.lower()) or (
        panel.remote_id.lower().removeprefix("apps@").split("@")[0] == wanted.removeprefix("apps@")
    )


def _matching_panels(panels: list[ReferencePanel], req: Request) -> list[ReferencePanel]:
    found = [p for p in panels if p.is_available]
    if req.panel:
        found = [p for p in found if _panel_named(p, req.panel)]
    if req.population:
        wanted = req.population.lower()
        found = [p for p in found if wanted in (x.lower() for x in p.populations)]
    return found


def _health(service: ImputationService) -> Part:
    status = service.health_status
    return Part(HEALTH_SCORES[status], WEIGHTS["health"], f"health is {status.value}")


def _panel(service: ImputationService, matching: list[ReferencePanel], req: Request) -> Part:
    weight = WEIGHTS["panel"]
    if not req.build:
        if req.panel or req.population:
            return Part(1.0, weight, f"offers {', '.join(p.slug for p in matching)}")
        return Part(0.5, weight, "no panel or population asked for")
    same_build = [p for p in matching if p.build == req.build] if matching else []
    if same_build:
        return Part(1.0, weight, f"{same_build[0].slug} is in {req.build}")
    if req.build in (service.supported_builds or []):
        return Part(0.7, weight, f"accepts {req.build} input (lifted over to the panel's build)")
    if not service.supported_builds:
        return Part(0.4, weight, "does not state which builds it accepts")
    return Part(0.0, weight, f"does not accept {req.build} input")


def _limits(service: ImputationService, samples: int | None) -> Part:
    weight = WEIGHTS["limits"]
    if samples is None:
        return Part(0.7, weight, "no sample count given")
    if service.min_samples is None and service.max_samples is None:
        return Part(0.7, weight, "sample limits unknown")
    return Part(1.0, weight, f"{samples} samples are within its limits")


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(math.sqrt(a))


def _distance(service: ImputationService, req: Request) -> Part:
    weight = WEIGHTS["distance"]
    if req.country and service.country and req.country.upper() == service.country:
        return Part(1.0, weight, f"in your country ({service.country})")
    if None not in (req.latitude, req.longitude, service.latitude, service.longitude):
        km = haversine_km(req.latitude, req.longitude, service.latitude, service.longitude)  # type: ignore[arg-type]
        return Part(round(1 / (1 + km / HALF_DISTANCE_KM), 4), weight, f"{km:,.0f} km away")
    return Part(0.5, weight, "distance unknown")


def _response_time(service: ImputationService) -> Part:
    weight = WEIGHTS["response_time"]
    if service.response_time_ms is None:
        return Part(0.5, weight, "response time unknown")
    ms = service.response_time_ms
    return Part(
        round(1 / (1 + ms / HALF_RESPONSE_MS), 4), weight, f"answered its last check in {ms:.0f} ms"
    )
