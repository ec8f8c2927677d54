"""Monthly job quotas and request rate limits, each one atomic Lua call shared by every API
process (so N processes enforce one limit, not N).

Quotas count jobs per tenant per calendar month (UTC): a submit reserves one unit before the
job is created and gives it back if the submit turned out to be an idempotent replay or failed.
Rates are token buckets per API key, refilled continuously at ``rate`` tokens a second, holding
at most one second's worth (the burst); time is Redis's own clock, the same for every process.
The bucket is spent in gate.py, in the same Lua call that finds the request's API key (and, for a
submit, reserves its quota unit).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from redis.asyncio import Redis

from jobrunner.store.keys import Keys

__all__ = [
    "RESERVE_UNIT",
    "TAKE_TOKEN",
    "Limits",
    "Period",
    "RateDecision",
    "billing_period",
    "counter_expiry_ms",
    "previous_period",
    "rate_decision",
]

# One unit of a quota counter: counted, or refused (and not counted) when ``quota`` is used up;
# the counter expires at ``expire_at`` (unix ms). Returns reserved (1/0) and the units used.
# Shared with gate.py's one-call admission.
RESERVE_UNIT = """
local function reserve_unit(counter, quota, expire_at)
  local used = redis.call('INCR', counter)
  if used == 1 then redis.call('PEXPIREAT', counter, expire_at) end
  if used > quota then
    redis.call('DECR', counter)
    return 0, used - 1
  end
  return 1, used
end
"""

# KEYS: 1 counter. ARGV: 1 quota, 2 expire-at ms. Returns {1, used} or {0, used} (refused).
_RESERVE = (
    RESERVE_UNIT
    + """
local reserved, used = reserve_unit(KEYS[1], tonumber(ARGV[1]), ARGV[2])
return {reserved, used}
"""
)

# KEYS: 1 counter. Gives back one unit, never below zero.
_RELEASE = """
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
if used > 0 then return redis.call('DECR', KEYS[1]) end
return 0
"""

# A token bucket at key ``bucket``: refilled at ``rate`` a second up to ``capacity``, on Redis's
# clock. Returns allowed (1/0) and the tokens left as a string (a Lua number returned to Redis
# as an integer would lose its fraction). Shared with gate.py's one-call admission.
TAKE_TOKEN = """
local function take_token(bucket, rate, capacity)
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  local state = redis.call('HMGET', bucket, 'tokens', 'at')
  local tokens = tonumber(state[1]) or capacity
  local at = tonumber(state[2]) or now
  tokens = math.min(capacity, tokens + math.max(0, now - at) * rate / 1000)
  local allowed = 0
  if tokens >= 1 then
    tokens = tokens - 1
    allowed = 1
  end
  redis.call('HSET', bucket, 'tokens', tostring(tokens), 'at', now)
  redis.call('PEXPIRE', bucket, math.ceil(capacity / rate * 1000) + 1000)
  return allowed, tostring(tokens)
end
"""


# KEYS: 1 bucket. ARGV: 1 rate a second, 2 capacity. Returns {allowed (1/0), tokens left}.
_TAKE = (
    TAKE_TOKEN
    + """
local allowed, left = take_token(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]))
return {allowed, left}
"""
)


@dataclass(frozen=True)
class Period:
    """One billing period: its name ('2025-01') and when the next one starts."""

    name: str
    resets_at: datetime


def billing_period(now: datetime) -> Period:
    """The calendar month (UTC) holding ``now``."""
    now = now.astimezone(UTC)
    year, month = (now.year + 1, 1) if now.month == 12 else (now.year, now.month + 1)
    return Period(f"{now.year:04d}-{now.month:02d}", datetime(year, month, 1, tzinfo=UTC))


def counter_expiry_ms(period: Period) -> int:
    """When a period's quota counter expires (unix ms): a week past its reset, kept for /usage."""
    return int(period.resets_at.timestamp() * 1000) + 7 * 86_400_000


def previous_period(now: datetime) -> Period:
    """The calendar month (UTC) before the one holding ``now``."""
    now = now.astimezone(UTC)
    return billing_period(datetime(now.year, now.month, 1, tzinfo=UTC) - timedelta(days=1))


@dataclass(frozen=True)
class RateDecision:
    """One request against a bucket: allowed or not, and the RateLimit-* header values."""

    allowed: bool
    limit: int
    remaining: int
    reset_s: int  # seconds until the bucket is full again
    retry_after_s: int  # seconds until one request is allowed (0 when allowed now)


class Limits:
    """Quota counters and rate buckets under one key prefix."""

    def __init__(self, redis: Redis, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys
        self._reserve = redis.register_script(_RESERVE)
        self._release = redis.register_script(_RELEASE)
        self._take = redis.register_script(_TAKE)

    async def reserve(self, tenant: str, period: Period, quota: int) -> tuple[bool, int]:
        """Count one job against the quota: (allowed, used including this one if allowed)."""
        ok, used = await self._reserve(
            keys=[self.keys.usage(tenant, period.name)], args=[quota, counter_expiry_ms(period)]
        )
        return bool(ok), int(used)

    async def release(self, tenant: str, period: Period) -> None:
        """Give back a reservation (the submit was a replay, or failed)."""
        await self._release(keys=[self.keys.usage(tenant, period.name)])

    async def used(self, tenant: str, period: Period) -> int:
        raw = await self.redis.get(self.keys.usage(tenant, period.name))
        return int(raw or 0)

    async def used_by(self, tenants: Sequence[str], period: Period) -> dict[str, int]:
        """Jobs each tenant submitted in ``period``, in one round trip."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for tenant in tenants:
                pipe.get(self.keys.usage(tenant, period.name))
            raw = await pipe.execute()
        return {tenant: int(value or 0) for tenant, value in zip(tenants, raw, strict=True)}

    async def reset(
        self, tenants: Sequence[str], periods: Sequence[Period]
    ) -> dict[str, dict[str, int]]:
        """Drop the counters of ``tenants`` in ``periods``: {tenant: {period: jobs it had}}
        for every counter that existed, in one round trip."""
        pairs = [(tenant, period.name) for tenant in tenants for period in periods]
        async with self.redis.pipeline(transaction=False) as pipe:
            for tenant, name in pairs:
                pipe.getdel(self.keys.usage(tenant, name))
            raw = await pipe.execute()
        dropped: dict[str, dict[str, int]] = {}
        for (tenant, name), value in zip(pairs, raw, strict=True):
            if value is not None:
                dropped.setdefault(tenant, {})[name] = int(value)
        return dropped

    async def take_signin(self, address: str, rate: float) -> RateDecision:
        """One token of a client address's sign-in bucket (the dashboard's form)."""
        allowed, left = await self._take(
            keys=[self.keys.signin_bucket(address)], args=[rate, max(rate, 1.0)]
        )
        return rate_decision(bool(allowed), float(left), rate)


def rate_decision(allowed: bool, tokens: float, rate: float) -> RateDecision:
    """The RateLimit-* values for a bucket of ``rate`` a second left with ``tokens``."""
    capacity = max(rate, 1.0)
    return RateDecision(
        allowed=allowed,
        limit=math.floor(capacity),
        remaining=math.floor(tokens),
        reset_s=math.ceil((capacity - tokens) / rate),
        retry_after_s=0 if allowed else max(1, math.ceil((1 - tokens) / rate)),
    )
