"""DNAstack (specs/external-protocols.md §3.2-3.3): its open cromwell-wes-service and the hosted
Workbench eWES, both behind OAuth2.

- `protocol_options.mode = "cromwell"`: standard WES multipart (`/ga4gh/wes/v1`), the JSON parts
  typed `application/json` (its controller binds them with `@RequestPart Map`), errors
  `{msg, error_code}`, a bare 401 from Spring Security.
- `mode = "workbench"`: namespaced paths `{base}/{namespace}/ga4gh/wes/v1/...` and a **JSON**
  `POST /runs` body (`ExtendedRunRequest`), so inputs must be links (no attachments); the extra
  states (PREPROCESSING, COMPLETE_WITH_ERRORS, PREPROCESSING_ERROR, NOT_PROCESSED) are mapped in
  `ga4gh_wes.STATE_MAP`.
- Credentials are an OAuth2 client id and secret: an access token is fetched from the registered
  `token_endpoint` with the client-credentials grant (form fields, as DNAstack's client sends
  them, plus `scope`/`resource` when registered) and cached until shortly before it expires; a
  401 from the API drops it so the next call fetches a new one. A user's plain bearer token works
  too.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from job_processor.adapters._http import clean_text, error_message, parse_json, send
from job_processor.adapters.base import (
    AuthFailed,
    CheckResult,
    Credentials,
    JobSpec,
    NotSubmittable,
    RemoteUnavailable,
    ServiceTarget,
)
from job_processor.adapters.ga4gh_wes import WES_PREFIX, WesAdapter

__all__ = ["DnastackAdapter"]

_DEFAULT_TTL = 300  # seconds, when the token answer has no expires_in
_MAX_TTL = 24 * 3600
_TokenKey = tuple[str, str, str]


class DnastackAdapter(WesAdapter):
    service_type = "dnastack"

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        workdir: Path | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(client, workdir=workdir)
        self.clock = clock
        self._tokens: dict[_TokenKey, tuple[str, float]] = {}
        self._locks: dict[_TokenKey, asyncio.Lock] = {}

    @staticmethod
    def mode(target: ServiceTarget) -> str:
        return "workbench" if target.auth.get("mode") == "workbench" else "cromwell"

    def api_root(self, target: ServiceTarget) -> str:
        if self.mode(target) != "workbench":
            return super().api_root(target)
        namespace = target.auth.get("namespace")
        if not isinstance(namespace, str) or not namespace.strip("/"):
            raise NotSubmittable("The Workbench service has no namespace registered.")
        root = (target.api_url or target.base_url).rstrip("/")
        suffix = f"/{namespace.strip('/')}{WES_PREFIX}"
        return root if root.endswith(suffix) else root + suffix

    # ---- OAuth2 client credentials --------------------------------------------------------
    def _key(self, target: ServiceTarget, creds: Credentials) -> _TokenKey:
        endpoint = target.auth.get("token_endpoint")
        if not isinstance(endpoint, str) or not endpoint:
            raise AuthFailed("The service has no OAuth2 token endpoint registered.")
        client_id, secret = creds.values.get("client_id"), creds.values.get("client_secret")
        if not client_id or not secret:
            raise AuthFailed("The stored DNAstack credentials need a client id and a secret.")
        # A changed secret must not be answered with the old secret's token.
        return endpoint, client_id, hashlib.sha256(secret.encode()).hexdigest()

    async def access_token(self, target: ServiceTarget, creds: Credentials) -> str:
        key = self._key(target, creds)
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:  # one token request at a time per client, however many jobs poll
            cached = self._tokens.get(key)
            if cached and cached[1] > self.clock():
                return cached[0]
            token, ttl = await self._fetch_token(target, creds, key[0])
            # Renew a little before the server's expiry so no call carries a dying token.
            self._tokens[key] = (token, self.clock() + ttl - min(60.0, ttl / 10))
            return token

    async def _fetch_token(
        self, target: ServiceTarget, creds: Credentials, endpoint: str
    ) -> tuple[str, float]:
        what = "token request"
        form = {
            "grant_type": "client_credentials",
            "client_id": creds.values["client_id"],
            "client_secret": creds.values["client_secret"],
        }
        for option in ("scope", "resource"):
            value = target.auth.get(option)
            if isinstance(value, str) and value:
                form[option] = value
        response = await send(self.client, "POST", endpoint, what, data=form)
        if response.status_code in (400, 401, 403):
            raise AuthFailed(
                f"{what}: the token endpoint refused the client credentials "
                f"({error_message(response)})",
                status_code=response.status_code,
            )
        if response.status_code >= 300:
            raise RemoteUnavailable(
                f"{what}: {error_message(response)}", status_code=response.status_code
            )
        body = parse_json(response, what)
        token = body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise RemoteUnavailable(f"{what}: the answer has no access_token")
        expires = body.get("expires_in") if isinstance(body, dict) else None
        ttl = float(expires) if isinstance(expires, int | float) and expires > 0 else _DEFAULT_TTL
        return token, min(ttl, _MAX_TTL)

    async def auth_headers(self, target: ServiceTarget, creds: Credentials) -> dict[str, str]:
        if creds.kind == "client_credentials":
            return {"Authorization": f"Bearer {await self.access_token(target, creds)}"}
        return await super().auth_headers(target, creds)

    def forget_auth(self, target: ServiceTarget, creds: Credentials) -> bool:
        if creds.kind != "client_credentials":
            return False
        return self._tokens.pop(self._key(target, creds), None) is not None

    # ---- Adapter --------------------------------------------------------------------------
    async def verify_credentials(self, target: ServiceTarget, creds: Credentials) -> CheckResult:
        """A fresh token from the token endpoint, then an authorised `GET /runs`."""
        if creds.kind == "none":
            return CheckResult(False, "No DNAstack credentials are stored for this service.")
        if creds.kind == "client_credentials":
            self.forget_auth(target, creds)
            try:
                await self.access_token(target, creds)
            except AuthFailed as refused:
                return CheckResult(False, clean_text(refused.message))
        return await super().verify_credentials(target, creds)

    def submit_body(self, target: ServiceTarget, spec: JobSpec) -> tuple[dict[str, str], Any]:
        """Workbench takes the RunRequest as JSON; cromwell-wes the standard multipart."""
        if self.mode(target) != "workbench":
            return super().submit_body(target, spec)
        if self.profile(target).get("input_delivery") == "attachment":
            raise NotSubmittable("DNAstack Workbench takes input links only, not attachments.")
        body = json.dumps(self.run_request(target, spec)).encode()
        return {"Content-Type": "application/json"}, body
