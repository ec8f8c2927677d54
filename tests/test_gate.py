"""The request gate: one Lua call finds the key, spends its rate and, for a submit, reserves a
unit of the tenant's monthly quota; concurrent calls share one pipeline."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from redis.asyncio import Redis

from jobrunner.store.gate import RequestGate
from jobrunner.store.keys import Keys
from jobrunner.store.limits import Limits, billing_period, counter_expiry_ms
from jobrunner.store.tenants import ApiKeys

PERIOD = billing_period(datetime.now(tz=UTC))


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest.fixture
def keys(key_prefix: str) -> Keys:
    return Keys(key_prefix)


@pytest.fixture
async def gate(redis: Redis, keys: Keys) -> AsyncIterator[RequestGate]:
    made = RequestGate(redis, keys, plan_rates={"pro": 1000}, plan_quotas={"pro": 3})
    yield made
    await made.aclose()


async def test_a_submit_reserves_one_quota_unit_in_the_same_call(
    redis: Redis, keys: Keys, gate: RequestGate
) -> None:
    _, text = await ApiKeys(redis, keys).create("acme", "pro", monthly_quota=2)
    units = [(await gate.admit(text, quota=PERIOD)) for _ in range(3)]
    assert [(a.quota.reserved, a.quota.used, a.quota.quota) for a in units if a and a.quota] == [
        (True, 1, 2),
        (True, 2, 2),
        (False, 2, 2),
    ]
    plain = await gate.admit(text)  # any other route: the quota is not touched
    assert plain is not None and plain.quota is None and plain.rate is not None
    assert await Limits(redis, keys).used("acme", PERIOD) == 2
    ttl_ms = await redis.pttl(keys.usage("acme", PERIOD.name))
    assert abs(ttl_ms - (counter_expiry_ms(PERIOD) - time.time() * 1000)) < 60_000


async def test_the_plans_quota_applies_and_a_plan_without_one_reserves_nothing(
    redis: Redis, keys: Keys, gate: RequestGate
) -> None:
    api_keys = ApiKeys(redis, keys)
    _, pro = await api_keys.create("acme", "pro")
    _, free = await api_keys.create("other", "free")
    reserved = [await gate.admit(pro, quota=PERIOD) for _ in range(4)]
    assert [a.quota.reserved for a in reserved if a and a.quota] == [True, True, True, False]
    unlimited = await gate.admit(free, quota=PERIOD)
    assert unlimited is not None and unlimited.quota is None and unlimited.rate is None
    assert await redis.exists(keys.usage("other", PERIOD.name)) == 0


async def test_a_request_the_rate_refuses_reserves_no_quota(
    redis: Redis, keys: Keys, gate: RequestGate
) -> None:
    _, text = await ApiKeys(redis, keys).create("acme", "pro", rate_limit_per_s=1)
    first = await gate.admit(text, quota=PERIOD)
    second = await gate.admit(text, quota=PERIOD)
    assert first is not None and first.rate and first.rate.allowed and first.quota
    assert first.quota.reserved
    assert second is not None and second.rate and not second.rate.allowed
    assert second.quota is None
    assert await Limits(redis, keys).used("acme", PERIOD) == 1


async def test_concurrent_calls_each_get_their_own_answer(
    redis: Redis, keys: Keys, gate: RequestGate
) -> None:
    api_keys = ApiKeys(redis, keys)
    texts = [(await api_keys.create(f"t{i}", "pro", monthly_quota=5))[1] for i in range(3)]
    calls = [(texts[i % 3], i % 2 == 0) for i in range(30)] + [("jr_unknown", True)]
    found = await asyncio.gather(
        *(gate.admit(text, quota=PERIOD if ask else None) for text, ask in calls)
    )
    assert found[-1] is None
    for (text, ask), admitted in zip(calls[:-1], found[:-1], strict=True):
        assert admitted is not None and admitted.key.tenant == f"t{texts.index(text)}"
        assert (admitted.quota is not None) == ask
    used = {f"t{i}": await Limits(redis, keys).used(f"t{i}", PERIOD) for i in range(3)}
    assert used == {"t0": 5, "t1": 5, "t2": 5}  # 5 asks each: every one reserved, none lost
    refused = [a for a in found[:-1] if a and a.quota and not a.quota.reserved]
    assert not refused


async def test_a_script_redis_forgot_is_loaded_again(
    redis: Redis, keys: Keys, gate: RequestGate
) -> None:
    _, text = await ApiKeys(redis, keys).create("acme", "pro")
    await redis.script_flush()
    found = await asyncio.gather(*(gate.admit(text, quota=PERIOD) for _ in range(3)))
    assert [a.quota.used for a in found if a and a.quota] == [1, 2, 3]
