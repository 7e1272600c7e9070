"""Service replicas: round-robin with passive health, as an httpx transport.

Each service has an :class:`UpstreamPool` of replica URLs. Requests take the replicas in turn;
one that fails to *connect* ``max_failures`` times in a row is left out for ``cooldown``
seconds, then gets requests again (one more failure sends it straight back to the bench, one
success clears it). Only connect failures count: nothing was sent, so the next replica can be
tried with the same request, even one with a streamed body. A replica that answers slowly or
badly is the caller's problem (504/502), not a reason to resend a request that may have acted.

:func:`first_reachable` is that failover, used by the proxy (``proxy.py``, on the lean client of
``upstream_http.py``) and by :class:`UpstreamTransport`, which applies it to every request the
gateway's own httpx client addresses to ``http://<service>/...`` (the API-token exchange, the
service-token fetch, the OpenAPI documents): both share one view of replica health.

The log follows changes of state, not attempts: a replica is logged once when it becomes
unreachable and once when it answers again; while it stays away (a service not deployed yet,
probed again after every cooldown) at most one reminder per ``REMINDER_SECONDS``.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

import httpx

from api_gateway.metrics import GatewayMetrics
from api_gateway.upstream_http import ConnectFailed, Origin

T = TypeVar("T")

logger = logging.getLogger(__name__)

# While a replica stays unreachable, how often the log says so again.
REMINDER_SECONDS = 600.0


class NoHealthyUpstream(Exception):
    """Every replica of ``service`` is cooling down after connect failures."""

    def __init__(self, service: str, retry_after: float) -> None:
        super().__init__(f"no healthy replica of {service}")
        self.service = service
        self.retry_after = retry_after


@dataclass(eq=False, slots=True)
class Upstream:
    url: httpx.URL
    failures: int = 0
    down_until: float = 0.0
    down_since: float | None = None  # when it was first benched (None: reachable)
    reminded_at: float = 0.0
    # For the proxy's own client: where to connect, the Host header, the path prefix.
    origin: Origin = field(init=False)
    host_bytes: bytes = field(init=False)
    base_path: bytes = field(init=False)

    def __post_init__(self) -> None:
        tls = self.url.scheme == "https"
        self.origin = Origin(self.url.host, self.url.port or (443 if tls else 80), tls)
        self.host_bytes = self.url.netloc
        self.base_path = self.url.raw_path.split(b"?", 1)[0].rstrip(b"/")

    @property
    def host_header(self) -> str:
        return self.host_bytes.decode("ascii")

    def target(self, url: httpx.URL) -> httpx.URL:
        """``url`` (``http://<service>/path?query``) moved onto this replica."""
        return self.url.copy_with(raw_path=self.base_path + url.raw_path)


class UpstreamPool:
    def __init__(
        self,
        service: str,
        urls: list[str],
        *,
        max_failures: int,
        cooldown: float,
        on_marked_down: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not urls:
            raise ValueError(f"no upstream URL configured for {service}")
        self.service = service
        self.upstreams = [Upstream(httpx.URL(u)) for u in urls]
        self._max_failures = max_failures
        self._cooldown = cooldown
        self._on_marked_down = on_marked_down
        self._clock = clock
        self._turn = itertools.count()

    def candidates(self) -> list[Upstream]:
        """The replicas to try for one request, in order: next in turn first, benched ones out."""
        now = self._clock()
        start = next(self._turn) % len(self.upstreams)
        ordered = self.upstreams[start:] + self.upstreams[:start]
        return [u for u in ordered if u.down_until <= now]

    def connect_failed(self, upstream: Upstream) -> None:
        upstream.failures += 1
        if upstream.failures < self._max_failures:
            return
        now = self._clock()
        upstream.down_until = now + self._cooldown
        if self._on_marked_down:
            self._on_marked_down(self.service)
        if upstream.down_since is None:
            upstream.down_since = upstream.reminded_at = now
            logger.warning(
                "upstream %s of %s is unreachable (%d connect failures); its requests are "
                "refused, and it is probed every %.0f s until it answers",
                upstream.url,
                self.service,
                upstream.failures,
                self._cooldown,
            )
        elif now - upstream.reminded_at >= REMINDER_SECONDS:
            upstream.reminded_at = now
            logger.warning(
                "upstream %s of %s still unreachable (for %s)",
                upstream.url,
                self.service,
                _duration(now - upstream.down_since),
            )

    def connected(self, upstream: Upstream) -> None:
        if upstream.down_since is not None:
            logger.info(
                "upstream %s of %s is reachable again (it was away for %s)",
                upstream.url,
                self.service,
                _duration(self._clock() - upstream.down_since),
            )
        upstream.failures = 0
        upstream.down_until = 0.0
        upstream.down_since = None

    def retry_after(self) -> float:
        """Seconds until the first benched replica is tried again."""
        now = self._clock()
        return max(0.0, min(u.down_until for u in self.upstreams) - now)


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def build_pools(
    urls: Mapping[str, list[str]],
    *,
    max_failures: int,
    cooldown: float,
    metrics: GatewayMetrics,
) -> dict[str, UpstreamPool]:
    def marked_down(service: str) -> None:
        metrics.upstream_marked_down.labels(service).inc()

    return {
        service: UpstreamPool(
            service,
            service_urls,
            max_failures=max_failures,
            cooldown=cooldown,
            on_marked_down=marked_down,
        )
        for service, service_urls in urls.items()
    }


async def first_reachable(
    pool: UpstreamPool,
    metrics: GatewayMetrics,
    attempt: Callable[[Upstream], Awaitable[T]],
    connect_errors: tuple[type[Exception], ...] = (ConnectFailed,),
) -> T:
    """``attempt(replica)`` on the replicas in turn until one connects: an attempt raising one
    of ``connect_errors`` sent nothing, so the next replica gets the same request. Raises the
    last connect error, or :class:`NoHealthyUpstream` when every replica is benched."""
    last_error: Exception | None = None
    for upstream in pool.candidates():
        try:
            result = await attempt(upstream)
        except connect_errors as exc:
            pool.connect_failed(upstream)
            metrics.upstream_errors.labels(pool.service, "connect").inc()
            last_error = exc
            continue
        pool.connected(upstream)
        return result
    if last_error is not None:
        raise last_error
    metrics.upstream_errors.labels(pool.service, "no_healthy_upstream").inc()
    raise NoHealthyUpstream(pool.service, pool.retry_after())


class UpstreamTransport(httpx.AsyncBaseTransport):
    """Sends ``http://<service>/...`` to a replica of ``<service>``, failing over on connect
    errors; raises :class:`NoHealthyUpstream` when every replica is benched."""

    def __init__(
        self,
        pools: Mapping[str, UpstreamPool],
        inner: httpx.AsyncBaseTransport,
        metrics: GatewayMetrics,
    ) -> None:
        self._pools = pools
        self._inner = inner
        self._metrics = metrics

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        pool = self._pools.get(request.url.host)
        if pool is None:
            raise ValueError(f"unknown service {request.url.host!r}")
        addressed = request.url

        async def attempt(upstream: Upstream) -> httpx.Response:
            request.url = upstream.target(addressed)
            request.headers["Host"] = upstream.host_header
            try:
                return await self._inner.handle_async_request(request)
            finally:
                # The request may be sent again (an auth flow's retry): keep it addressed to
                # the service, so the next attempt picks a replica afresh.
                request.url = addressed

        return await first_reachable(
            pool, self._metrics, attempt, (httpx.ConnectError, httpx.ConnectTimeout)
        )

    async def aclose(self) -> None:
        await self._inner.aclose()
