"""Idempotent submits over HTTP, monthly quotas and rate limits (429s with their headers)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import httpx
from asgi_lifespan import LifespanManager

from jobrunner.api import create_app
from jobrunner.api.services import ApiServices
from jobrunner.store.limits import billing_period
from tests.api.conftest import MakeKey, api_settings, assert_problem, bearer

JOBS = "/api/v1/jobs"


async def test_replay_is_200_with_the_same_job_and_the_header(
    client: httpx.AsyncClient, make_key: MakeKey
) -> None:
    key = await make_key()
    body = {"task": "demo.echo", "params": {"a": 1, "b": [1, 2]}}
    first = await client.post(JOBS, json=body, headers={**bearer(key), "Idempotency-Key": "k1"})
    assert first.status_code == 202 and "Idempotent-Replayed" not in first.headers
    reordered = b'{"params": {"b": [1, 2], "a": 1},   "task": "demo.echo"}'
    again = await client.post(
        JOBS,
        content=reordered,
        headers={**bearer(key), "Idempotency-Key": "k1", "content-type": "application/json"},
    )
    assert again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["id"] == first.json()["id"] and again.json()["idempotency_key"] == "k1"
    in_body = await client.post(JOBS, json={**body, "idempotency_key": "k1"}, headers=bearer(key))
    assert in_body.status_code == 200 and in_body.json()["id"] == first.json()["id"]


async def test_same_key_other_body_is_422_key_reuse(
    client: httpx.AsyncClient, make_key: MakeKey
) -> None:
    key = await make_key()
    headers = {**bearer(key), "Idempotency-Key": "k2"}
    await client.post(JOBS, json={"task": "demo.echo", "params": {"a": 1}}, headers=headers)
    for other in (
        {"task": "demo.echo", "params": {"a": 2}},
        {"task": "demo.echo", "params": {"a": 1}, "priority": 5},  # options count too
    ):
        reply = await client.post(JOBS, json=other, headers=headers)
        assert_problem(reply, 422, "idempotency-key-reuse")


async def test_header_and_body_keys_must_agree_and_be_well_formed(
    client: httpx.AsyncClient, make_key: MakeKey
) -> None:
    key = await make_key()
    body = {"task": "demo.echo", "idempotency_key": "a"}
    clash = await client.post(JOBS, json=body, headers={**bearer(key), "Idempotency-Key": "b"})
    assert assert_problem(clash, 422)["errors"][0]["loc"] == "idempotency_key"
    spaced = await client.post(
        JOBS, json={"task": "demo.echo"}, headers={**bearer(key), "Idempotency-Key": "a b"}
    )
    assert assert_problem(spaced, 422)["errors"][0]["loc"] == "header.Idempotency-Key"


async def test_keys_are_per_tenant(client: httpx.AsyncClient, make_key: MakeKey) -> None:
    a, b = await make_key("acme"), await make_key("globex")
    body = {"task": "demo.echo"}
    ja = await client.post(JOBS, json=body, headers={**bearer(a), "Idempotency-Key": "same"})
    jb = await client.post(JOBS, json=body, headers={**bearer(b), "Idempotency-Key": "same"})
    assert ja.status_code == jb.status_code == 202 and ja.json()["id"] != jb.json()["id"]


async def test_fifty_concurrent_identical_requests_make_one_job(
    client: httpx.AsyncClient, make_key: MakeKey, api: ApiServices
) -> None:
    key = await make_key(rate_limit_per_s=1000)
    headers = {**bearer(key), "Idempotency-Key": "burst"}
    body = {"task": "demo.echo", "params": {"n": 1}}
    replies = await asyncio.gather(
        *(client.post(JOBS, json=body, headers=headers) for _ in range(50))
    )
    codes = sorted(r.status_code for r in replies)
    assert codes == [200] * 49 + [202]
    assert len({r.json()["id"] for r in replies}) == 1
    assert sum(r.headers.get("Idempotent-Replayed") == "true" for r in replies) == 49
    assert (await api.runner.list("acme")).total == 1
    period = billing_period(datetime.now(tz=UTC))
    assert await api.limits.used("acme", period) == 1  # replays are not counted


async def test_quota_429_until_the_reset_and_replays_still_served(
    client: httpx.AsyncClient, make_key: MakeKey
) -> None:
    key = await make_key(monthly_quota=2)
    first = await client.post(
        JOBS, json={"task": "demo.echo"}, headers={**bearer(key), "Idempotency-Key": "q1"}
    )
    assert first.status_code == 202
    assert (
        await client.post(JOBS, json={"task": "demo.echo"}, headers=bearer(key))
    ).status_code == 202
    over = await client.post(JOBS, json={"task": "demo.echo"}, headers=bearer(key))
    body = assert_problem(over, 429, "quota-exceeded")
    period = billing_period(datetime.now(tz=UTC))
    wait = (period.resets_at - datetime.now(tz=UTC)).total_seconds()
    assert abs(int(over.headers["Retry-After"]) - wait) < 5 and body["quota"] == 2
    replay = await client.post(
        JOBS, json={"task": "demo.echo"}, headers={**bearer(key), "Idempotency-Key": "q1"}
    )
    assert replay.status_code == 200 and replay.json()["id"] == first.json()["id"]
    usage = (await client.get("/api/v1/usage", headers=bearer(key))).json()
    assert usage == {
        "tenant": "acme",
        "plan": "pro",
        "period": period.name,
        "used": 2,
        "quota": 2,
        "resets_at": period.resets_at.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
    }


async def test_a_refused_submit_does_not_use_quota(
    client: httpx.AsyncClient, make_key: MakeKey
) -> None:
    key = await make_key(monthly_quota=1)
    assert_problem(await client.post(JOBS, json={"task": "nope"}, headers=bearer(key)), 422)
    assert (
        await client.post(JOBS, json={"task": "demo.echo"}, headers=bearer(key))
    ).status_code == 202


async def test_a_body_refused_before_validation_gives_its_unit_back(
    client: httpx.AsyncClient, make_key: MakeKey, api: ApiServices
) -> None:
    key = await make_key(monthly_quota=1)
    headers = {**bearer(key), "Content-Type": "application/json"}
    assert_problem(await client.post(JOBS, content=b"{not json", headers=headers), 400)
    assert_problem(await client.post(JOBS, content=b"[1, 2]", headers=headers), 422)
    period = billing_period(datetime.now(tz=UTC))
    assert await api.limits.used("acme", period) == 0
    assert (
        await client.post(JOBS, json={"task": "demo.echo"}, headers=bearer(key))
    ).status_code == 202
    assert await api.limits.used("acme", period) == 1


async def test_a_rate_limited_submit_uses_no_quota(
    client: httpx.AsyncClient, make_key: MakeKey, api: ApiServices
) -> None:
    key = await make_key(monthly_quota=5, rate_limit_per_s=1)
    first = await client.post(JOBS, json={"task": "demo.echo"}, headers=bearer(key))
    limited = await client.post(JOBS, json={"task": "demo.echo"}, headers=bearer(key))
    assert first.status_code == 202
    assert_problem(limited, 429, "rate-limited")
    assert await api.limits.used("acme", billing_period(datetime.now(tz=UTC))) == 1


async def test_rate_limit_429_with_headers_and_headers_on_success(
    client: httpx.AsyncClient, make_key: MakeKey
) -> None:
    key = await make_key(rate_limit_per_s=3)
    replies = [await client.get(JOBS, headers=bearer(key)) for _ in range(4)]
    ok, limited = replies[:3], replies[3]
    assert [r.status_code for r in ok] == [200, 200, 200]
    assert [r.headers["RateLimit-Remaining"] for r in ok] == ["2", "1", "0"]
    assert all(r.headers["RateLimit-Limit"] == "3" for r in replies)
    assert_problem(limited, 429, "rate-limited")
    assert limited.headers["Retry-After"] == "1" and limited.headers["RateLimit-Remaining"] == "0"
    assert 0 <= int(limited.headers["RateLimit-Reset"]) <= 1


async def test_the_bucket_is_shared_by_every_api_process(
    redis_url: str, key_prefix: str, tmp_path: Path, client: httpx.AsyncClient, make_key: MakeKey
) -> None:
    key = await make_key(rate_limit_per_s=2)
    second = create_app(api_settings(redis_url, key_prefix, tmp_path))
    async with LifespanManager(second), _client(second) as other:
        assert (await client.get(JOBS, headers=bearer(key))).status_code == 200
        assert (await other.get(JOBS, headers=bearer(key))).status_code == 200
        assert_problem(await other.get(JOBS, headers=bearer(key)), 429, "rate-limited")
        assert_problem(await client.get(JOBS, headers=bearer(key)), 429, "rate-limited")


def _client(app: object) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://b.test")  # type: ignore[arg-type]
