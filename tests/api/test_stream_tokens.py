"""Stream tokens: a page follows one job's events with a token in the URL (EventSource and
WebSocket cannot send headers), and the token grants nothing else."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from jobrunner.api.services import ApiServices
from jobrunner.store.tenants import key_digest
from jobrunner.worker.runner import WorkerRunner
from tests.api.conftest import MakeKey, assert_problem, bearer
from tests.api.test_streaming import JOBS, sse, submit
from tests.polling import eventually


@pytest.fixture
async def key(make_key: MakeKey) -> str:
    return await make_key("acme", "pro")


async def token_for(client: httpx.AsyncClient, key: str, job_id: str, **body: object) -> dict:
    reply = await client.post(
        f"{JOBS}/{job_id}/stream-token", headers=bearer(key), **({"json": body} if body else {})
    )
    assert reply.status_code == 201, reply.text
    assert reply.headers["cache-control"] == "no-store"
    grant: dict = reply.json()
    return grant


async def test_a_page_follows_its_job_with_the_token_alone(
    live_url: str, key: str, worker: WorkerRunner
) -> None:
    async with httpx.AsyncClient(base_url=live_url, timeout=30) as live:
        job_id = await submit(live, key, "demo.sleep", params={"seconds": 0.3, "steps": 3})
        grant = await token_for(live, key, job_id)
        assert grant["token"].startswith("jst_") and grant["job_id"] == job_id
        assert grant["stream_url"] == f"{JOBS}/{job_id}/stream?token={grant['token']}"
        async with asyncio.timeout(30), live.stream("GET", grant["stream_url"]) as reply:
            assert reply.status_code == 200  # no Authorization header at all
            events = [e async for e in sse(reply) if "event" in e]
        assert events[-1]["data"]["status"] == "succeeded"
        url = live_url.replace("http", "ws") + grant["ws_url"]
        async with asyncio.timeout(30), connect(url) as ws:
            messages = [json.loads(raw) async for raw in ws]
        assert messages[-1]["id"] == "1-succeeded-100"  # the job is over: its last state


async def test_a_token_grants_only_its_own_job(
    client: httpx.AsyncClient, key: str, make_key: MakeKey
) -> None:
    mine = (await client.post(JOBS, json={"task": "demo.echo"}, headers=bearer(key))).json()["id"]
    other = (await client.post(JOBS, json={"task": "demo.echo"}, headers=bearer(key))).json()["id"]
    grant = await token_for(client, key, mine)
    reply = await client.get(f"{JOBS}/{other}/stream", params={"token": grant["token"]})
    assert_problem(reply, 403, "forbidden")
    # nor any other route: a token is not an API key
    reply = await client.get(f"{JOBS}/{mine}", headers=bearer(grant["token"]))
    assert_problem(reply, 401, "unauthorized")
    reply = await client.get(f"{JOBS}/{mine}/stream", params={"token": "jst_made_up"})
    assert_problem(reply, 401, "unauthorized")
    assert 'error="invalid_token"' in reply.headers["www-authenticate"]
    # a tenant gets tokens for its own jobs only
    theirs = await make_key("globex")
    reply = await client.post(f"{JOBS}/{mine}/stream-token", headers=bearer(theirs))
    assert_problem(reply, 404)


async def test_an_expired_token_is_refused_and_only_its_digest_is_stored(
    client: httpx.AsyncClient, key: str, api: ApiServices
) -> None:
    job_id = (await client.post(JOBS, json={"task": "demo.echo"}, headers=bearer(key))).json()["id"]
    grant = await token_for(client, key, job_id, ttl_seconds=60)
    redis, stored = api.runner.redis, api.runner.keys.stream_token(key_digest(grant["token"]))
    assert 55_000 < await redis.pttl(stored) <= 60_000
    assert grant["token"].encode() not in await redis.get(stored)
    await redis.pexpire(stored, 1)  # as if its minute had passed
    await eventually(lambda: redis.exists(stored), lambda n: n == 0, timeout=5)
    reply = await client.get(f"{JOBS}/{job_id}/stream", params={"token": grant["token"]})
    assert_problem(reply, 401, "unauthorized")


async def test_the_websocket_refuses_a_token_for_another_job(live_url: str, key: str) -> None:
    async with httpx.AsyncClient(base_url=live_url, timeout=30) as live:
        first = await submit(live, key, "demo.echo")
        second = await submit(live, key, "demo.echo")
        grant = await token_for(live, key, first)
    url = live_url.replace("http", "ws") + f"{JOBS}/{second}/ws?token={grant['token']}"
    with pytest.raises(InvalidStatus) as refused:
        await connect(url)
    assert refused.value.response.status_code == 403


@pytest.mark.parametrize(
    ("body", "status"),
    [({"ttl_seconds": 5}, 422), ({"ttl_seconds": 86401}, 422), ({"ttl": 60}, 422)],
)
async def test_a_bad_token_request_is_refused(
    client: httpx.AsyncClient, key: str, body: dict, status: int
) -> None:
    job_id = (await client.post(JOBS, json={"task": "demo.echo"}, headers=bearer(key))).json()["id"]
    reply = await client.post(f"{JOBS}/{job_id}/stream-token", json=body, headers=bearer(key))
    assert_problem(reply, status)
    reply = await client.post(
        f"{JOBS}/{job_id}/stream-token",
        content=b"{not json",
        headers={**bearer(key), "content-type": "application/json"},
    )
    assert_problem(reply, 400, "malformed-json")
