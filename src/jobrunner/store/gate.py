"""One Redis call per API request: find the key by its digest and spend one token of its rate
bucket (a round trip is the dearest part of a request here, so the two are one Lua call)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

from redis.asyncio import Redis

from jobrunner.store.keys import Keys
from jobrunner.store.limits import TAKE_TOKEN, RateDecision, rate_decision
from jobrunner.store.tenants import ApiKey, key_digest

__all__ = ["Admitted", "RequestGate"]

# KEYS: 1 the key's hash. ARGV: 1 rate bucket key with '{key_id}' in place of the id,
# 2 plan -> requests a second (JSON). Returns {} for an unknown key, else
# {key hash (flat), rate ('' for none), allowed, tokens left}.
_ADMIT = (
    TAKE_TOKEN
    + """
local flat = redis.call('HGETALL', KEYS[1])
if #flat == 0 then return {} end
local key = {}
for i = 1, #flat, 2 do key[flat[i]] = flat[i + 1] end
local plan_rates = cjson.decode(ARGV[2])
local rate = tonumber(key['rate_limit_per_s'] or '') or tonumber(plan_rates[key['plan']] or '')
if not rate then return {flat, '', 1, '0'} end
local bucket = string.gsub(ARGV[1], '{key_id}', key['key_id'])
local allowed, left = take_token(bucket, rate, math.max(rate, 1))
return {flat, tostring(rate), allowed, left}
"""
)


@dataclass(frozen=True)
class Admitted:
    """A known key and, when it has a rate limit, what its bucket said."""

    key: ApiKey
    rate: RateDecision | None


class RequestGate:
    def __init__(self, redis: Redis, keys: Keys, *, plan_rates: Mapping[str, float]) -> None:
        self.keys = keys
        self._plan_rates = json.dumps(dict(plan_rates))
        self._admit = redis.register_script(_ADMIT)

    async def admit(self, api_key: str) -> Admitted | None:
        """None for an unknown or revoked key."""
        reply = await self._admit(
            keys=[self.keys.api_key(key_digest(api_key))],
            args=[self.keys.rate_bucket("{key_id}"), self._plan_rates],
        )
        if not reply:
            return None
        flat, rate, allowed, left = reply
        key = ApiKey.decode({flat[i]: flat[i + 1] for i in range(0, len(flat), 2)})
        if not rate:
            return Admitted(key, None)
        return Admitted(key, rate_decision(bool(allowed), float(left), float(rate)))
