"""Live events over a real uvicorn: SSE (ids, heartbeats, Last-Event-ID resume, end after a
terminal status) and the WebSocket."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from jobrunner.worker.runner import WorkerRunner
from tests.api.conftest import MakeKey, bearer

JOBS = "/api/v1/jobs"
Event = dict[str, Any]


async def sse(reply: httpx.Response) -> AsyncIterator[Event]:
    """Parsed SSE events; a comment becomes ``{"comment": text}``."""
    fields: Event = {}
    async for line in reply.aiter_lines():
        if line.startswith(":"):
            yield {"comment": line[1:].strip()}
        elif line == "":
            if fields:
                yield fields
            fields = {}
        else:
            name, _, value = line.partition(": ")
            fields[name] = json.loads(value) if name == "data" else value


async def follow(
    live: httpx.AsyncClient, key: str, job_id: str, last_id: str | None = None
) -> list[Event]:
    """Every event until the server ends the stream."""
    headers = {**bearer(key), **({"Last-Event-ID": last_id} if last_id else {})}
    async with (
        asyncio.timeout(30),
        live.stream("GET", f"{JOBS}/{job_id}/stream", headers=headers) as reply,
    ):
        assert reply.status_code == 200
        assert reply.headers["content-type"].startswith("text/event-stream")
        return [e async for e in sse(reply) if "event" in e]


@pytest.fixture
async def live(live_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=live_url, timeout=30) as c:
        yield c


@pytest.fixture
async def key(make_key: MakeKey) -> str:
    return await make_key("acme", "pro")


async def submit(live: httpx.AsyncClient, key: str, task: str, **body: Any) -> str:
    reply = await live.post(JOBS, json={"task": task, **body}, headers=bearer(key))
    assert reply.status_code == 202, reply.text
    job_id: str = reply.json()["id"]
    return job_id


async def test_the_stream_carries_ids_progress_and_ends_after_the_terminal_status(
    live: httpx.AsyncClient, key: str, worker: WorkerRunner
) -> None:
    job_id = await submit(live, key, "demo.sleep", params={"seconds": 0.4, "steps": 4})
    events = await follow(live, key, job_id)
    assert events[0]["event"] == "status"  # the state at connection
    assert events[-1]["event"] == "status" and events[-1]["data"]["status"] == "succeeded"
    assert any(e["event"] == "progress" for e in events)
    ids = [e["id"] for e in events]
    assert len(set(ids)) == len(ids) and ids[-1] == "1-succeeded-100"
    progress = [e["data"]["progress"] for e in events]
    assert progress == sorted(progress)
    assert all(e["data"]["job_id"] == job_id and e["data"]["at"].endswith("Z") for e in events)


async def test_an_idle_stream_sends_comment_heartbeats(live: httpx.AsyncClient, key: str) -> None:
    job_id = await submit(live, key, "demo.echo", defer_s=60)  # waits; nothing happens to it
    comments = 0
    async with (
        asyncio.timeout(10),
        live.stream("GET", f"{JOBS}/{job_id}/stream", headers=bearer(key)) as reply,
    ):
        async for event in sse(reply):
            comments += "comment" in event
            if comments == 2:  # test settings: one every 0.5 s
                break
    assert comments == 2


async def test_resume_with_last_event_id(
    live: httpx.AsyncClient, key: str, worker: WorkerRunner
) -> None:
    job_id = await submit(live, key, "demo.sleep", params={"seconds": 0.2, "steps": 2})
    events = await follow(live, key, job_id)
    last = events[-1]["id"]
    assert await follow(live, key, job_id, last_id=last) == []  # saw the end: nothing more
    resumed = await follow(live, key, job_id, last_id=events[0]["id"])
    assert [e["id"] for e in resumed] == [last]  # the state now, once


async def test_resume_mid_run_does_not_repeat_the_last_state(
    live: httpx.AsyncClient, key: str, worker: WorkerRunner
) -> None:
    job_id = await submit(live, key, "demo.sleep", params={"seconds": 1.5, "steps": 3})
    async with live.stream("GET", f"{JOBS}/{job_id}/stream", headers=bearer(key)) as reply:
        first = await anext(e async for e in sse(reply) if "event" in e)
    rest = await follow(live, key, job_id, last_id=first["id"])
    assert rest and first["id"] not in [e["id"] for e in rest]
    assert rest[-1]["data"]["status"] == "succeeded"


async def test_the_websocket_sends_the_same_events_then_closes(
    live_url: str, live: httpx.AsyncClient, key: str, worker: WorkerRunner
) -> None:
    job_id = await submit(live, key, "demo.sleep", params={"seconds": 0.3, "steps": 3})
    url = live_url.replace("http", "ws") + f"{JOBS}/{job_id}/ws"
    messages = []
    async with asyncio.timeout(30), connect(url, additional_headers=bearer(key)) as ws:
        async for raw in ws:
            messages.append(json.loads(raw))
        assert ws.close_code == 1000
    assert messages[-1]["event"] == "status" and messages[-1]["data"]["status"] == "succeeded"
    assert messages[-1]["id"] == "1-succeeded-100" and messages[-1]["data"]["job_id"] == job_id


async def test_the_websocket_is_refused_without_a_key_or_for_another_tenant(
    live_url: str, live: httpx.AsyncClient, key: str, make_key: MakeKey
) -> None:
    job_id = await submit(live, key, "demo.echo")
    url = live_url.replace("http", "ws") + f"{JOBS}/{job_id}/ws"
    with pytest.raises(InvalidStatus) as none:
        await connect(url)
    assert none.value.response.status_code == 401
    problem = json.loads(none.value.response.body or b"{}")
    assert problem["type"] == "/problems/unauthorized"
    other = await make_key("globex")
    with pytest.raises(InvalidStatus) as theirs:
        await connect(url, additional_headers=bearer(other))
    assert theirs.value.response.status_code == 404
