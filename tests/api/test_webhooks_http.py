"""callback_url end to end over HTTP: a job submitted with a tenant key whose webhook secret was
set by the admin route, its signed final representation at a real receiver, and every delivery
attempt in GET /api/v1/jobs/{id}/events."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from jobrunner.api.services import ApiServices
from jobrunner.domain.webhooks import verify_signature
from jobrunner.settings import Settings
from jobrunner.worker.runner import WorkerRunner
from tests.api.conftest import MakeKey, api_settings, bearer
from tests.polling import eventually
from tests.webhook_receiver import Receiver, receiving

TENANT_SECRET = "acme-webhook-secret-0123"


@pytest.fixture
def settings(redis_url: str, key_prefix: str, tmp_path: Path) -> Settings:
    return api_settings(
        redis_url,
        key_prefix,
        tmp_path,
        connector_allow_private=True,  # the receiver is on 127.0.0.1
        webhook_secret="deployment-default-secret",
        webhook_retry_base_seconds=0.05,
        webhook_retry_cap_seconds=0.1,
    )


@pytest.fixture
async def worker(api: ApiServices) -> AsyncIterator[WorkerRunner]:
    async with WorkerRunner(api.settings, api.registry, redis=api.runner.redis) as w:
        yield w


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with receiving() as r:
        yield r


async def webhook_events(
    client: httpx.AsyncClient, key: str, job_id: str, count: int
) -> list[dict[str, Any]]:
    async def read() -> list[dict[str, Any]]:
        reply = await client.get(f"/api/v1/jobs/{job_id}/events", headers=bearer(key))
        return [e for e in reply.json()["items"] if e["event"].startswith("webhook_")]

    return await eventually(read, lambda events: len(events) >= count, timeout=10)


async def test_a_job_ends_and_its_signed_representation_reaches_the_callback(
    client: httpx.AsyncClient, make_key: MakeKey, worker: WorkerRunner, receiver: Receiver
) -> None:
    key = await make_key("acme", plan="pro", webhook_secret=TENANT_SECRET)
    receiver.statuses = [503]
    body = {"task": "demo.echo", "params": {"x": 1}, "callback_url": receiver.url("/jobs")}
    submitted = await client.post("/api/v1/jobs", json=body, headers=bearer(key))
    assert submitted.status_code == 202
    job_id = submitted.json()["id"]

    events = await webhook_events(client, key, job_id, count=2)
    assert [(e["event"], e["http_status"], e["attempt"]) for e in events] == [
        ("webhook_failed", 503, 1),
        ("webhook_delivered", 200, 2),
    ]
    assert events[0]["error"]["code"] == "webhook_http_error"
    final = (await client.get(f"/api/v1/jobs/{job_id}", headers=bearer(key))).json()
    assert final["status"] == "succeeded"
    for got in receiver.got:
        assert json.loads(got.body) == final  # exactly what GET /api/v1/jobs/{id} shows
        header = got.headers["x-jobrunner-signature"]
        assert verify_signature(TENANT_SECRET, got.body, header, now=time.time())
        assert not verify_signature("deployment-default-secret", got.body, header, now=time.time())
        stamp = int(header.split(",")[0].removeprefix("t="))
        assert abs(stamp - time.time()) < 30


async def test_a_waiting_job_cancelled_over_http_is_reported(
    client: httpx.AsyncClient, make_key: MakeKey, worker: WorkerRunner, receiver: Receiver
) -> None:
    key = await make_key("acme", plan="pro")  # no secret of its own: the deployment's signs
    body = {"task": "demo.echo", "defer_s": 600, "callback_url": receiver.url()}
    job_id = (await client.post("/api/v1/jobs", json=body, headers=bearer(key))).json()["id"]
    cancelled = await client.delete(f"/api/v1/jobs/{job_id}", headers=bearer(key))
    assert cancelled.status_code == 202
    (event,) = await webhook_events(client, key, job_id, count=1)
    assert (event["event"], event["http_status"]) == ("webhook_delivered", 200)
    (got,) = receiver.got
    assert json.loads(got.body)["status"] == "cancelled"
    assert got.headers["x-jobrunner-event"] == "job.cancelled"
    header = got.headers["x-jobrunner-signature"]
    assert verify_signature("deployment-default-secret", got.body, header, now=time.time())
