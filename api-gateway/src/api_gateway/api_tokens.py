"""Personal API tokens (``fgi_...``) exchanged for short-lived access JWTs at the edge.

Contract with user-service: ``POST /internal/api-tokens/exchange`` with the gateway's service
token and JSON ``{"token": "fgi_..."}`` answers ``{"access_token", "expires_in", "token_id"}``;
422 means the token is unknown, expired or revoked, and 401 that the *gateway's service token*
was refused: only that re-mints the service token (once, :class:`ServiceTokenAuth`), so a
guessed ``fgi_`` token costs one exchange and never a re-mint. On revocation user-service publishes the
token id on the Redis channel ``fedimpute:api-token-revoked``.

The exchanged JWT is cached (keyed by the token's SHA-256, never the token itself) until
shortly before it expires, and evicted the moment its revocation is announced. The cache is
used only while the revocation subscription is live: a gateway that cannot hear revocations
exchanges every time rather than trust what it may have missed. Tokens are never logged.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import httpx
from redis.asyncio import Redis

from api_gateway.metrics import GatewayMetrics
from api_gateway.upstreams import NoHealthyUpstream
from fedimpute_shared.problems import ServiceUnavailable

logger = logging.getLogger(__name__)

API_TOKEN_PREFIX = "fgi_"
REVOCATION_CHANNEL = "fedimpute:api-token-revoked"
EXCHANGE_URL = "http://user-service/internal/api-tokens/exchange"
# The API token in the body is bad (user-service answers 422; 400/404/410 are read the same).
_REFUSED = frozenset({400, 404, 410, 422})
# The gateway's own credential is refused: ServiceTokenAuth has already re-minted its service
# token once; the client's token is not to blame, so the client gets a 503, not a 401.
_OWN_CREDENTIAL_REFUSED = frozenset({401, 403})


class ApiTokenRefused(Exception):
    """user-service does not accept this API token (unknown, expired or revoked)."""


@dataclass(slots=True)
class _Exchanged:
    access_token: str
    token_id: str
    renew_at: float


class ApiTokenExchanger:
    def __init__(
        self,
        client: httpx.AsyncClient,
        auth: httpx.Auth,
        metrics: GatewayMetrics,
        *,
        renew_margin: float = 30,
        max_entries: int = 10_000,
        url: str = EXCHANGE_URL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._auth = auth
        self._metrics = metrics
        self._renew_margin = renew_margin
        self._max_entries = max_entries
        self._url = url
        self._clock = clock
        self._cache: OrderedDict[str, _Exchanged] = OrderedDict()
        self._keys_by_token_id: dict[str, set[str]] = {}
        # Set by RevocationListener while its subscription is live.
        self.caching = False

    def has_cached(self, token: str) -> bool:
        entry = self._cache.get(_key(token)) if self.caching else None
        return entry is not None and entry.renew_at > self._clock()

    async def exchange(self, token: str) -> str:
        """A valid access JWT for ``token``; raises :class:`ApiTokenRefused` or 503."""
        key = _key(token)
        if self.caching and (entry := self._cache.get(key)) is not None:
            if entry.renew_at > self._clock():
                self._cache.move_to_end(key)
                return entry.access_token
            self._forget(key)
        entry = await self._fetch(token)
        if self.caching:
            self._remember(key, entry)
        return entry.access_token

    async def _fetch(self, token: str) -> _Exchanged:
        try:
            response = await self._client.post(self._url, json={"token": token}, auth=self._auth)
        except (httpx.HTTPError, NoHealthyUpstream) as exc:
            self._metrics.api_token_exchanges.labels("error").inc()
            logger.warning("API-token exchange failed: %s", type(exc).__name__)
            raise ServiceUnavailable("API tokens cannot be checked right now; try again") from None
        if response.status_code in _REFUSED:
            self._metrics.api_token_exchanges.labels("refused").inc()
            raise ApiTokenRefused("API token is invalid, expired or revoked")
        if response.status_code in _OWN_CREDENTIAL_REFUSED:
            self._metrics.api_token_exchanges.labels("error").inc()
            logger.error(
                "user-service refused the gateway's own service token (%s) even after a re-mint; "
                "check SERVICE_CLIENT_SECRET and the signing keys",
                response.status_code,
            )
            raise ServiceUnavailable("API tokens cannot be checked right now; try again")
        try:
            response.raise_for_status()
            body = response.json()
            entry = _Exchanged(
                access_token=str(body["access_token"]),
                token_id=str(body["token_id"]),
                renew_at=self._clock() + float(body["expires_in"]) - self._renew_margin,
            )
        except (httpx.HTTPStatusError, ValueError, KeyError, TypeError) as exc:
            self._metrics.api_token_exchanges.labels("error").inc()
            logger.warning("API-token exchange answered %s: %s", response.status_code, exc)
            raise ServiceUnavailable("API tokens cannot be checked right now; try again") from None
        self._metrics.api_token_exchanges.labels("ok").inc()
        return entry

    def _remember(self, key: str, entry: _Exchanged) -> None:
        self._forget(key)
        self._cache[key] = entry
        self._keys_by_token_id.setdefault(entry.token_id, set()).add(key)
        while len(self._cache) > self._max_entries:
            self._forget(next(iter(self._cache)))

    def _forget(self, key: str) -> None:
        entry = self._cache.pop(key, None)
        if entry is not None:
            keys = self._keys_by_token_id.get(entry.token_id, set())
            keys.discard(key)
            if not keys:
                self._keys_by_token_id.pop(entry.token_id, None)

    def revoke(self, token_id: str) -> None:
        """Drop the cached exchange of API token ``token_id`` (it was revoked)."""
        for key in list(self._keys_by_token_id.get(token_id, ())):
            self._forget(key)

    def clear(self) -> None:
        self._cache.clear()
        self._keys_by_token_id.clear()

    def __len__(self) -> int:
        return len(self._cache)


def _key(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _token_id(data: bytes | str) -> str:
    """The message is the token id; a JSON object ``{"token_id": ...}`` is accepted too."""
    text = data.decode() if isinstance(data, bytes) else data
    text = text.strip()
    if text.startswith("{"):
        try:
            return str(json.loads(text)["token_id"])
        except (ValueError, KeyError, TypeError):
            return text
    return text


class RevocationListener:
    """Follows the revocation channel; keeps the exchanger's cache on only while subscribed.

    It polls with a timeout and checks a stop flag rather than relying on cancellation alone:
    redis-py can swallow a cancellation that lands in the middle of a read.
    """

    def __init__(
        self,
        redis: Redis,
        exchanger: ApiTokenExchanger,
        *,
        channel: str = REVOCATION_CHANNEL,
        retry_seconds: float = 1.0,
        poll_seconds: float = 1.0,
    ) -> None:
        self._redis = redis
        self._exchanger = exchanger
        self._channel = channel
        self._retry = retry_seconds
        self._poll = poll_seconds
        self._stopping = False
        self.subscribed = asyncio.Event()

    async def run(self) -> None:
        while not self._stopping:
            try:
                await self._follow()
            except Exception as exc:  # Redis went away: stop trusting the cache, retry
                logger.warning(
                    "API-token revocation channel lost (%s); cache off until resubscribed",
                    type(exc).__name__,
                )
            finally:
                self._exchanger.caching = False
                self._exchanger.clear()
                self.subscribed.clear()
            if not self._stopping:
                await asyncio.sleep(self._retry)

    def stop(self) -> None:
        self._stopping = True

    async def _follow(self) -> None:
        async with self._redis.pubsub() as pubsub:
            await pubsub.subscribe(self._channel)
            while not self._stopping:
                message = await pubsub.get_message(timeout=self._poll)
                if message is None:
                    continue
                if message.get("type") == "subscribe":  # the server confirmed: we hear revocations
                    self._exchanger.caching = True
                    self.subscribed.set()
                elif message.get("type") == "message":
                    token_id = _token_id(message["data"])
                    self._exchanger.revoke(token_id)
                    logger.info("API token %s revoked: cache entry evicted", token_id)
