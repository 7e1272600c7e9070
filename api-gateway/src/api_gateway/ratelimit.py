"""Rate limiting in Redis: GCRA in one Lua script, one round trip per request.

GCRA (the generic cell rate algorithm) keeps one number per key, the theoretical arrival time
(TAT) of the next request. A quota of ``q`` requests per ``w`` seconds is one request every
``w/q`` seconds with a burst of up to ``q``: it behaves as a sliding window without storing
each request. The script reads Redis's own clock, so every gateway replica agrees.

Responses carry the IETF draft fields (draft-ietf-httpapi-ratelimit-headers-08 and later)::

    RateLimit-Policy: "default";q=600;w=60
    RateLimit: "default";r=599;t=1

and a refusal is a 429 problem with ``Retry-After``. When Redis is unreachable the limiter
fails open by default (the request passes, a counter and a throttled warning record it) or
closed (503) when configured so; after an error it leaves Redis alone for a moment, so a dead
Redis costs no per-request timeout.
"""

from __future__ import annotations

import hashlib
import logging
import math
import re
import time
from dataclasses import dataclass

from redis.exceptions import NoScriptError, RedisError

from api_gateway.metrics import GatewayMetrics
from api_gateway.redis_pipe import RedisPipe
from fedimpute_shared.problems import ServiceUnavailable, TooManyRequests

logger = logging.getLogger(__name__)

KEY_PREFIX = "fedimpute:ratelimit:"

# KEYS[1]: the bucket. ARGV[1]: emission interval (ms), ARGV[2]: window = burst (ms).
# Returns {allowed (0/1), remaining, retry_after_ms, reset_ms}.
GCRA_SCRIPT = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000 + math.floor(tonumber(now_parts[2]) / 1000)
local interval = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end
local new_tat = tat + interval
local allow_at = new_tat - window
if allow_at > now then
  return {0, 0, allow_at - now, tat - now}
end
local ttl = math.ceil(new_tat - now)
if ttl < 1 then ttl = 1 end
redis.call('SET', KEYS[1], new_tat, 'PX', ttl)
return {1, math.floor((window - (new_tat - now)) / interval), 0, new_tat - now}
"""

_RATE = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*([smh]?)\s*$")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600}
_WARN_EVERY_SECONDS = 30.0


@dataclass(frozen=True, slots=True)
class Rate:
    """``quota`` requests per ``window`` seconds."""

    name: str
    quota: int
    window: int

    @property
    def interval_ms(self) -> float:
        return self.window * 1000 / self.quota

    @property
    def policy_header(self) -> bytes:
        return f'"{self.name}";q={self.quota};w={self.window}'.encode()


def parse_rate(spec: str, name: str = "default") -> Rate:
    """``"10/60"`` (10 per 60 s), ``"10/1m"``, ``"1000/1h"``."""
    match = _RATE.match(spec)
    if not match or int(match[1]) < 1 or int(match[2]) < 1:
        raise ValueError(f"rate limit {spec!r} must look like '<requests>/<seconds>' (e.g. 10/60)")
    return Rate(name, int(match[1]), int(match[2]) * _UNIT_SECONDS[match[3]])


@dataclass(frozen=True, slots=True)
class Decision:
    rate: Rate
    allowed: bool
    remaining: int
    retry_after_seconds: int
    reset_seconds: int

    def headers(self) -> list[tuple[bytes, bytes]]:
        state = f'"{self.rate.name}";r={self.remaining};t={self.reset_seconds}'.encode()
        return [(b"ratelimit-policy", self.rate.policy_header), (b"ratelimit", state)]

    def refusal(self) -> TooManyRequests:
        headers = {k.decode(): v.decode() for k, v in self.headers()}
        headers["Retry-After"] = str(self.retry_after_seconds)
        return TooManyRequests(
            f"rate limit of {self.rate.quota} requests per {self.rate.window} s reached; "
            f"retry in {self.retry_after_seconds} s",
            headers=headers,
            limit_class=self.rate.name,
            retry_after=self.retry_after_seconds,
        )


class RateLimiter:
    def __init__(
        self,
        redis: RedisPipe,
        rates: dict[str, Rate],
        metrics: GatewayMetrics,
        *,
        fail_open: bool = True,
        retry_after_error_seconds: float = 1.0,
    ) -> None:
        self._redis = redis
        self._sha = hashlib.sha1(GCRA_SCRIPT.encode(), usedforsecurity=False).hexdigest()
        self._rates = rates
        self._metrics = metrics
        self._fail_open = fail_open
        self._retry_after_error = retry_after_error_seconds
        self._skip_until = 0.0
        self._last_warning = float("-inf")

    async def hit(self, limit_class: str, subject: str) -> Decision | None:
        """Count one request of ``subject`` (``user:<id>`` or ``ip:<addr>``).

        Returns the decision (check ``allowed``), or None when Redis is unavailable and the
        limiter fails open. Raises 503 when it is unavailable and the limiter fails closed.
        """
        rate = self._rates[limit_class]
        if time.monotonic() < self._skip_until:
            self._unavailable(None)
            return None
        try:
            raw = await self._gcra(
                f"{KEY_PREFIX}{limit_class}:{subject}", rate.interval_ms, rate.window * 1000
            )
        except (RedisError, OSError) as exc:
            self._skip_until = time.monotonic() + self._retry_after_error
            self._unavailable(exc)
            return None
        allowed, remaining, retry_ms, reset_ms = (int(v) for v in raw)
        decision = Decision(
            rate=rate,
            allowed=bool(allowed),
            remaining=max(remaining, 0),
            retry_after_seconds=max(1, math.ceil(retry_ms / 1000)) if not allowed else 0,
            reset_seconds=math.ceil(reset_ms / 1000),
        )
        self._metrics.rate_limit.labels(limit_class, "allowed" if allowed else "limited").inc()
        return decision

    async def _gcra(self, key: str, interval_ms: float, window_ms: int) -> list[int]:
        """The script by its SHA (one round trip), loaded first when Redis does not know it
        (a restart, SCRIPT FLUSH)."""
        try:
            reply = await self._redis.evalsha(self._sha, [key], [interval_ms, window_ms])
        except NoScriptError:
            await self._redis.script_load(GCRA_SCRIPT)
            reply = await self._redis.evalsha(self._sha, [key], [interval_ms, window_ms])
        if not isinstance(reply, list) or len(reply) != 4:
            raise RedisError(f"unexpected answer from the rate-limit script: {reply!r}")
        return reply

    def _unavailable(self, exc: Exception | None) -> None:
        self._metrics.rate_limit_unavailable.inc()
        now = time.monotonic()
        if now - self._last_warning > _WARN_EVERY_SECONDS:
            self._last_warning = now
            action = "allowing requests" if self._fail_open else "refusing requests (503)"
            reason = f": {type(exc).__name__}: {exc}" if exc else ""
            logger.warning("rate limiting unavailable, %s%s", action, reason)
        if not self._fail_open:
            raise ServiceUnavailable(
                "rate limiting is unavailable; try again shortly", headers={"Retry-After": "1"}
            )
