"""The checks a job must pass before it is stored (``POST /jobs``) or that pre-flight reports per
target: pure functions over what the registry, file-manager and the vault said, each failure a
:class:`Reason` naming what to fix. No I/O here, so the same rules answer both routes."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

PHASINGS = ("eagle", "beagle", "no_phasing")
MODES = ("imputation", "qc_only")


@dataclass(frozen=True)
class Reason:
    """Why a job would fail on a target; ``field`` points at the request member to change."""

    code: str
    message: str
    field: str | None = None


def find_panel(service: dict[str, Any], panel: str) -> dict[str, Any] | None:
    """The service's panel named by id, slug or remote id."""
    for candidate in service.get("panels") or []:
        if panel in (str(candidate.get("id")), candidate.get("slug"), candidate.get("remote_id")):
            return dict(candidate)
    return None


def check_target(
    service: dict[str, Any],
    panel_ref: str,
    *,
    build: str,
    phasing: str,
    population: str | None,
    mode: str,
) -> tuple[dict[str, Any] | None, list[Reason]]:
    """The panel and options against the service; the panel (when found) and the reasons."""
    reasons: list[Reason] = []
    name = service.get("name") or service.get("slug")
    if not service.get("is_active", False) or service.get("deleted_at"):
        reasons.append(Reason("service_inactive", f"{name} is not accepting jobs", "service"))
    panel = find_panel(service, panel_ref)
    if panel is None:
        reasons.append(
            Reason(
                "panel_not_offered",
                f"{name} has no reference panel '{panel_ref}'",
                "panel",
            )
        )
        return None, reasons
    label = panel.get("display_name") or panel.get("slug")
    if not panel.get("is_available", False):
        reasons.append(Reason("panel_unavailable", f"the panel {label} is not available", "panel"))
    builds = (service.get("limits") or {}).get("supported_builds") or []
    if panel.get("build") and panel["build"] != build:
        reasons.append(
            Reason(
                "build_unsupported",
                f"the panel {label} is on {panel['build']}, not {build}",
                "build",
            )
        )
    elif builds and build not in builds:
        reasons.append(
            Reason(
                "build_unsupported", f"{name} supports {', '.join(builds)}, not {build}", "build"
            )
        )
    populations = panel.get("populations") or []
    if population and populations and population not in populations:
        reasons.append(
            Reason(
                "population_unsupported",
                f"the panel {label} has the populations {', '.join(populations)}, not {population}",
                "population",
            )
        )
    reasons.extend(_protocol_reasons(service, phasing=phasing, mode=mode, population=population))
    return panel, reasons


def _protocol_reasons(
    service: dict[str, Any], *, phasing: str, mode: str, population: str | None
) -> list[Reason]:
    """What the service's protocol (a WES workflow profile) can take."""
    if service.get("kind") != "ga4gh_wes":
        return []
    name = service.get("name") or service.get("slug")
    profile = service.get("workflow_profile")
    if not isinstance(profile, dict):
        return [
            Reason(
                "no_workflow_profile",
                f"{name} has no workflow profile yet: an administrator must set one",
                "service",
            )
        ]
    reasons: list[Reason] = []
    given = {"phasing": phasing, "mode": mode, "population": population}
    for param in (profile.get("params") or {}).values():
        if not isinstance(param, dict):
            continue
        source, table = param.get("from"), param.get("values")
        value = given.get(str(source))
        if isinstance(table, dict) and value is not None and str(value) not in table:
            supported = ", ".join(sorted(table))
            reasons.append(
                Reason(
                    f"{source}_unsupported",
                    f"{name}'s workflow takes {source} {supported}, not {value}",
                    str(source),
                )
            )
    if mode == "qc_only" and not any(
        isinstance(p, dict) and p.get("from") == "mode"
        for p in (profile.get("params") or {}).values()
    ):
        reasons.append(
            Reason("mode_unsupported", f"{name}'s workflow cannot run quality control only", "mode")
        )
    return reasons


def check_file(
    file_id: uuid.UUID, found: dict[str, Any] | None, service: dict[str, Any] | None
) -> list[Reason]:
    """One input file: the caller's, a validated VCF, within the service's limits."""
    where = f"input_file_ids[{file_id}]"
    if found is None:
        return [Reason("file_not_found", f"file {file_id} does not exist or is not yours", where)]
    label = found.get("filename") or str(file_id)
    status = found.get("status")
    if status == "validating":
        return [Reason("file_validating", f"{label} is still being validated: wait for it", where)]
    if status != "valid":
        return [
            Reason(
                "file_invalid",
                f"{label} is {status}: only a validated VCF can be imputed "
                "(see its validation report)",
                where,
            )
        ]
    if found.get("kind") not in (None, "input"):
        return [
            Reason("file_not_input", f"{label} is a {found.get('kind')} file, not an input", where)
        ]
    if service is None:
        return []
    reasons: list[Reason] = []
    name = service.get("name") or service.get("slug")
    limits = service.get("limits") or {}
    size, max_size = found.get("size_bytes"), limits.get("max_file_size_bytes")
    if isinstance(size, int) and isinstance(max_size, int) and size > max_size:
        reasons.append(
            Reason(
                "file_too_large",
                f"{label} is {size} bytes; {name} takes files up to {max_size} bytes",
                where,
            )
        )
    statistics = (found.get("validation") or {}).get("statistics") or {}
    samples = statistics.get("samples")
    low, high = limits.get("min_samples"), limits.get("max_samples")
    if isinstance(samples, int):
        if isinstance(low, int) and samples < low:
            reasons.append(
                Reason(
                    "too_few_samples",
                    f"{label} has {samples} samples; {name} needs at least {low}",
                    where,
                )
            )
        if isinstance(high, int) and samples > high:
            reasons.append(
                Reason(
                    "too_many_samples",
                    f"{label} has {samples} samples; {name} takes at most {high}",
                    where,
                )
            )
    return reasons


def check_build_of_files(files: list[dict[str, Any]], build: str) -> list[Reason]:
    """A file whose detected build contradicts the requested one."""
    reasons = []
    for found in files:
        detection = (found.get("validation") or {}).get("build") or {}
        detected = detection.get("detected") if isinstance(detection, dict) else None
        reliable = (
            isinstance(detection, dict) and detection.get("detected_from") == "contig_lengths"
        )
        if detected and reliable and detected != build:
            reasons.append(
                Reason(
                    "build_mismatch",
                    f"{found.get('filename')} is on {detected} (from its contig lengths), "
                    f"not {build}",
                    "build",
                )
            )
    return reasons


def check_credentials(service: dict[str, Any], has_credentials: bool) -> list[Reason]:
    if service.get("requires_credentials") and not has_credentials:
        name = service.get("name") or service.get("slug")
        return [
            Reason(
                "credentials_missing",
                f"{name} needs your {service.get('credential_type', 'credentials')}: "
                "store it under /users/me/service-credentials first",
                "service",
            )
        ]
    return []


def check_health(service: dict[str, Any], health: dict[str, Any] | None) -> list[Reason]:
    report = health or service.get("health") or {}
    status = report.get("status")
    if status in ("unhealthy", "timeout"):
        name = service.get("name") or service.get("slug")
        error = report.get("error") or report.get("last_error")
        detail = f": {error}" if error else ""
        return [Reason("service_unhealthy", f"{name} is currently unhealthy{detail}", "service")]
    return []
