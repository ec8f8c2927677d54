"""The live pages' Server-Sent Events over a real uvicorn (httpx's ASGI transport hands a
response over only once it is complete): a job's progress and panel until ``end``, the
overview refreshed, a waiting job's place re-read, and streams that stop with the session."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from jobrunner.api.services import ApiServices
from jobrunner.runtime import JobRunner
from jobrunner.worker.runner import WorkerRunner
from tests.api.conftest import ADMIN_TOKEN
from tests.dashboard.conftest import sign_in

Event = dict[str, Any]


async def events(reply: httpx.Response) -> AsyncIterator[Event]:
    """Parsed SSE messages: ``{"event": name, "data": text}`` (data lines joined)."""
    name, data = "message", []
    async for line in reply.aiter_lines():
        if line == "":
            if data:
                yield {"event": name, "data": "\n".join(data)}
            name, data = "message", []
        elif line.startswith("event: "):
            name = line[len("event: ") :]
        elif line.startswith("data: "):
            data.append(line[len("data: ") :])


@pytest.fixture
async def live(site: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=site, timeout=30) as client:
        assert (await sign_in(client, ADMIN_TOKEN)).status_code == 303
        yield client


async def collect(client: httpx.AsyncClient, url: str, until: str, limit: int = 500) -> list[Event]:
    seen: list[Event] = []
    async with asyncio.timeout(20), client.stream("GET", url) as reply:
        assert reply.status_code == 200
        assert reply.headers["content-type"].startswith("text/event-stream")
        async for item in events(reply):
            seen.append(item)
            if item["event"] == until or len(seen) >= limit:
                break
    return seen


async def test_a_job_stream_carries_progress_then_the_final_panel_then_end(
    live: httpx.AsyncClient, runner: JobRunner, worker: WorkerRunner
) -> None:
    job = await runner.enqueue("demo.sleep", {"seconds": 0.6, "steps": 6}, defer_seconds=0.3)
    seen = await collect(live, f"/dashboard/jobs/{job.id}/stream", until="end")
    progress = [json.loads(e["data"]) for e in seen if e["event"] == "progress"]
    values = [p["progress"] for p in progress]
    assert values == sorted(values) and values[-1] == 100 and any(0 < v < 100 for v in values)
    assert progress[-1]["status"] == "succeeded" and progress[-1]["message"] == "step 6/6"
    panels = [e["data"] for e in seen if e["event"] == "job"]
    assert "status-succeeded" in panels[-1] and "Audit trail" in panels[-1]
    assert seen[-1] == {"event": "end", "data": "succeeded"}


async def test_a_waiting_jobs_panel_is_re_read_while_it_waits(
    live: httpx.AsyncClient, runner: JobRunner
) -> None:
    """No event comes for a job that only waits; its panel (place in queue) is re-rendered
    every refresh interval all the same."""
    job = await runner.enqueue("demo.echo", {})
    seen = await collect(live, f"/dashboard/jobs/{job.id}/stream", until="never", limit=3)
    assert [e["event"] for e in seen] == ["progress", "job", "job"]
    assert all("Why it waits" in e["data"] for e in seen[1:])


async def test_the_overview_stream_sends_the_panel_again_and_again(
    live: httpx.AsyncClient, worker: WorkerRunner
) -> None:
    seen = await collect(live, "/dashboard/overview/stream", until="never", limit=2)
    assert [e["event"] for e in seen] == ["overview", "overview"]
    assert all("Queues" in e["data"] and worker.worker_id in e["data"] for e in seen)
    workers = await collect(live, "/dashboard/overview/stream?panel=workers", "never", limit=1)
    assert workers[0]["event"] == "workers" and "Last 15 minutes" not in workers[0]["data"]


async def test_a_stream_ends_when_the_key_behind_it_is_revoked(site: str, api: ApiServices) -> None:
    key, text = await api.api_keys.create("acme", "pro")
    async with httpx.AsyncClient(base_url=site, timeout=30) as client:
        assert (await sign_in(client, text)).status_code == 303
        async with asyncio.timeout(20), client.stream("GET", "/dashboard/overview/stream") as reply:
            stream = events(reply)
            first = await anext(stream)
            assert first["event"] == "overview" and "Live workers" not in first["data"]
            await api.api_keys.revoke(key.key_id)
            rest = [e async for e in stream]  # the server ends the stream by itself
    assert len(rest) <= 1
