"""One Redis call per API request: find the key by its digest, spend one token of its rate bucket
and, for a submit, reserve one unit of the tenant's monthly quota (a round trip is the dearest
part of a request here, so these are one Lua call). The calls of concurrent requests made in one
event-loop iteration go to Redis together, as one pipeline of EVALSHA."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import NoScriptError

from jobrunner.store.coalesce import Coalescer
from jobrunner.store.keys import Keys
from jobrunner.store.limits import (
    RESERVE_UNIT,
    TAKE_TOKEN,
    Period,
    RateDecision,
    counter_expiry_ms,
    rate_decision,
)
from jobrunner.store.tenants import ApiKey, key_digest

__all__ = ["Admitted", "QuotaUnit", "RequestGate"]

# KEYS: 1 the key's hash. ARGV: 1 rate bucket key with '{key_id}' in place of the id,
# 2 plan -> requests a second (JSON), 3 quota counter key with '{tenant}' in place of the tenant
# ('': reserve nothing), 4 plan -> monthly quota (JSON), 5 the counter's expiry (unix ms).
# Returns {} for an unknown key, else {key hash (flat), rate ('' for none), allowed, tokens left,
# quota ('' for none or not asked), reserved (1/0), used}. A refused request reserves nothing.
_ADMIT = (
    TAKE_TOKEN
    + RESERVE_UNIT
    + """
local flat = redis.call('HGETALL', KEYS[1])
if #flat == 0 then return {} end
local key = {}
for i = 1, #flat, 2 do key[flat[i]] = flat[i + 1] end
local function limit(field, plans)
  return tonumber(key[field] or '') or tonumber(cjson.decode(plans)[key['plan']] or '')
end
local rate = limit('rate_limit_per_s', ARGV[2])
local allowed, left = 1, '0'
if rate then
  local bucket = string.gsub(ARGV[1], '{key_id}', key['key_id'])
  allowed, left = take_token(bucket, rate, math.max(rate, 1))
end
local quota, reserved, used = nil, 0, 0
if allowed == 1 and ARGV[3] ~= '' then
  quota = limit('monthly_quota', ARGV[4])
  if quota then
    local counter = string.gsub(ARGV[3], '{tenant}', key['tenant'])
    reserved, used = reserve_unit(counter, quota, ARGV[5])
  end
end
return {flat, rate and tostring(rate) or '', allowed, left, quota and tostring(quota) or '',
        reserved, used}
"""
)

_Call = tuple[str, str, str]  # the key's hash, the quota counter template, its expiry


@dataclass(frozen=True)
class QuotaUnit:
    """A submit's unit of the monthly quota: reserved, or refused (the quota is used up)."""

    reserved: bool
    used: int  # units counted in the period, this one included when reserved
    quota: int


@dataclass(frozen=True)
class Admitted:
    """A known key; what its bucket said when it has a rate limit; and, when a quota unit was
    asked for and the key has a quota, what the counter said (None when the rate refused)."""

    key: ApiKey
    rate: RateDecision | None
    quota: QuotaUnit | None = None


class RequestGate:
    def __init__(
        self,
        redis: Redis,
        keys: Keys,
        *,
        plan_rates: Mapping[str, float],
        plan_quotas: Mapping[str, int] | None = None,
    ) -> None:
        self.redis = redis
        self.keys = keys
        self._plan_rates = json.dumps(dict(plan_rates))
        self._plan_quotas = json.dumps(dict(plan_quotas or {}))
        self._script = redis.register_script(_ADMIT)
        self._calls: Coalescer[_Call, Any] = Coalescer(self._send)

    async def admit(self, api_key: str, *, quota: Period | None = None) -> Admitted | None:
        """None for an unknown or revoked key. With ``quota``, a request the rate allows also
        reserves one unit of the tenant's quota for that period (when the key has a quota)."""
        counter = self.keys.usage("{tenant}", quota.name) if quota else ""
        expiry = str(counter_expiry_ms(quota)) if quota else ""
        reply = await self._calls.call((self.keys.api_key(key_digest(api_key)), counter, expiry))
        return _admitted(reply) if reply else None

    async def aclose(self) -> None:
        """Wait for the calls already sent."""
        await self._calls.aclose()

    async def _send(self, calls: Sequence[_Call]) -> list[Any]:
        """Each call's reply or its own error, in order; Redis having forgotten the script (a
        restart, a SCRIPT FLUSH) loads it again and resends only the calls it refused."""
        replies = await self._run(calls)
        missing = [i for i, reply in enumerate(replies) if isinstance(reply, NoScriptError)]
        if missing:
            await self.redis.script_load(self._script.script)
            again = await self._run([calls[i] for i in missing])
            for i, reply in zip(missing, again, strict=True):
                replies[i] = reply
        return replies

    async def _run(self, calls: Sequence[_Call]) -> list[Any]:
        rate_bucket = self.keys.rate_bucket("{key_id}")
        async with self.redis.pipeline(transaction=False) as pipe:
            for key_hash, counter, expiry in calls:
                args = (rate_bucket, self._plan_rates, counter, self._plan_quotas, expiry)
                pipe.execute_command("EVALSHA", self._script.sha, 1, key_hash, *args)
            replies: list[Any] = await pipe.execute(raise_on_error=False)
        return replies


def _admitted(reply: Sequence[Any]) -> Admitted:
    flat, rate, allowed, left, quota, reserved, used = reply
    key = ApiKey.decode({flat[i]: flat[i + 1] for i in range(0, len(flat), 2)})
    decision = rate_decision(bool(allowed), float(left), float(rate)) if rate else None
    unit = QuotaUnit(bool(reserved), int(used), int(float(quota))) if quota else None
    return Admitted(key, decision, unit)
