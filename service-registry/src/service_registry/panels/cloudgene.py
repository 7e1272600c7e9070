"""Reading a Cloudgene server's panels (spec §4.2): its imputation app, and the app form's
``refpanel`` (``app_list``) and ``population`` (``binded_list``) inputs.

Cloudgene 3 filters apps by the caller's permissions: anonymously ``GET /api/v2/server`` may list
no apps and recent releases answer the app form with 401 (or 404 "not found or the request
requires user authentication"). So both calls carry the administrator's Cloudgene API token
(``X-Auth-Token``) when one is given. App ids are listed as ``id@version``; the bare id is what
the registry keeps (``cloudgene_app_id``), the version is data (``cloudgene_app_version``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from service_registry.health.http import ProbeClient
from service_registry.health.probes import ProbeFailure, ProbeLimits, cloudgene_root, fetch_json
from service_registry.panels.remote import RemotePanel, slugify, split_app_ref, version_key

# The genotype-imputation apps of Cloudgene servers, most recent first (specs §4): MIS2/TOPMed
# v2/AfriGen-D, then MIS v1. Variants such as imputationserver2-pgs or -hla are other apps.
KNOWN_IMPUTATION_APPS = ("imputationserver2", "imputationserver", "minimac4")


class CloudgeneAuthNeeded(Exception):
    """The server hides what we asked for from this caller: a (valid) token is needed."""


@dataclass
class CloudgeneListing:
    source: str
    app_id: str
    app_version: str | None
    panels: list[RemotePanel]
    builds: list[str]


async def read_cloudgene(
    client: ProbeClient,
    base_url: str,
    app_id: str | None,
    limits: ProbeLimits,
    token: str | None,
) -> CloudgeneListing:
    root = cloudgene_root(base_url)
    headers = {"X-Auth-Token": token} if token else None
    version: str | None = None
    if not app_id:
        server = await _get(client, f"{root}/server", limits, headers)
        app_id, version = _pick_imputation_app(server, authenticated=headers is not None)
    url = f"{root}/server/apps/{app_id}"
    app = await _get(client, url, limits, headers)
    if not isinstance(app, dict):
        raise ProbeFailure("the app form is not a JSON object", 200)
    listed_version = split_app_ref(str(app.get("id") or app_id))[1]
    version = str(app.get("version") or listed_version or version or "") or None
    params = {p.get("id"): p for p in app.get("params") or [] if isinstance(p, dict)}
    if "refpanel" not in params:
        raise ProbeFailure(f"app {app_id!r} has no refpanel input", 200)
    return CloudgeneListing(
        source=url,
        app_id=split_app_ref(app_id)[0],
        app_version=version,
        panels=_panels(params["refpanel"], _populations(params.get("population"))),
        builds=_builds(params.get("build")),
    )


async def _get(
    client: ProbeClient, url: str, limits: ProbeLimits, headers: dict[str, str] | None
) -> Any:
    try:
        return (await fetch_json(client, url, limits, headers))[1]
    except ProbeFailure as exc:
        # 401/403, and CG3's 404 "not found or the request requires user authentication".
        if exc.http_status in (401, 403) or (exc.http_status == 404 and headers is None):
            if headers is None:
                raise CloudgeneAuthNeeded(
                    f"{url} answered HTTP {exc.http_status} to an anonymous caller"
                ) from None
            raise CloudgeneAuthNeeded(
                f"{url} refused the Cloudgene token (HTTP {exc.http_status})"
            ) from None
        raise


def _pick_imputation_app(server: Any, *, authenticated: bool) -> tuple[str, str | None]:
    """The bare id and version of the server's imputation app (ids may be ``id@version``)."""
    apps = server.get("apps") if isinstance(server, dict) else None
    listed = [
        split_app_ref(str(a["id"])) for a in apps or [] if isinstance(a, dict) and a.get("id")
    ]
    if not listed and not authenticated:
        raise CloudgeneAuthNeeded("the server lists no apps to an anonymous caller")
    for wanted in KNOWN_IMPUTATION_APPS:
        versions = [v for bare, v in listed if bare == wanted]
        if versions:
            return wanted, max(versions, key=version_key)
    ids = [bare for bare, _ in listed]
    raise ProbeFailure(f"no genotype imputation app among the server's apps {ids}", 200)


def _populations(param: Any) -> dict[str, list[str]]:
    """Panel key → population ids, from the ``binded_list`` bound to ``refpanel``."""
    if not isinstance(param, dict):
        return {}
    out: dict[str, list[str]] = {}
    for entry in param.get("values") or []:
        if isinstance(entry, dict) and isinstance(entry.get("key"), str):
            out[entry["key"]] = [
                str(p["key"])
                for p in entry.get("values") or []
                if isinstance(p, dict) and p.get("key")
            ]
    return out


def _panels(refpanel: Any, populations: dict[str, list[str]]) -> list[RemotePanel]:
    """One panel per bare id: when several versions are listed, the newest."""
    newest: dict[str, RemotePanel] = {}
    for value in refpanel.get("values") or [] if isinstance(refpanel, dict) else []:
        key = value.get("key") if isinstance(value, dict) else None
        if not isinstance(key, str) or not key.strip():
            continue
        bare, version = split_app_ref(key)
        panel = RemotePanel(
            slug=slugify(bare),
            remote_id=key,
            display_name=str(value.get("value") or value.get("label") or bare)[:200],
            version=version,
            populations=populations.get(key, []),
        )
        known = newest.get(panel.slug)
        if known is None or version_key(version) > version_key(known.version):
            newest[panel.slug] = panel
    return list(newest.values())


def _builds(param: Any) -> list[str]:
    values = param.get("values") if isinstance(param, dict) else None
    return sorted(
        {
            str(v["key"])
            for v in values or []
            if isinstance(v, dict) and v.get("key") in ("hg19", "hg38")
        }
    )
