"""Operations routes over ASGI against the test Redis: health, readiness, metrics, queues,
workers."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager
from prometheus_client.parser import text_string_to_metric_families

from jobrunner.api import create_app
from jobrunner.api.services import ApiServices
from jobrunner.domain.status import JobStatus
from jobrunner.runtime import JobRunner
from jobrunner.settings import Settings
from jobrunner.worker.runner import WorkerRunner
from tests.api.conftest import MakeKey, admin, api_settings, assert_problem, bearer
from tests.polling import eventually

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def samples(text: str) -> Samples:
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def sample(found: Samples, name: str, **labels: str) -> float | None:
    return found.get((name, frozenset(labels.items())))


@pytest.fixture
async def worker(api: ApiServices) -> AsyncIterator[WorkerRunner]:
    async with WorkerRunner(api.settings, api.registry, redis=api.runner.redis) as w:
        yield w


async def test_health_and_readiness_need_no_credentials(client: httpx.AsyncClient) -> None:
    live = await client.get("/healthz")
    assert (live.status_code, live.json()) == (200, {"status": "ok"})
    ready = await client.get("/readyz")
    assert (ready.status_code, ready.json()) == (200, {"status": "ready"})


async def test_metrics_render_cluster_counters_histograms_and_gauges(
    client: httpx.AsyncClient, api: ApiServices, worker: WorkerRunner
) -> None:
    runner: JobRunner = api.runner
    done = await runner.enqueue("demo.echo", {}, plan="pro")
    await runner.wait(done.id, timeout=5)
    await runner.enqueue("demo.echo", {}, plan="free", defer_seconds=600)
    await eventually(runner.metrics, lambda s: "demo.echo" in s.durations)

    reply = await client.get("/metrics")
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("text/plain; version=0.0.4")
    found = samples(reply.text)
    assert sample(found, "jobrunner_jobs_submitted_total", queue="pro", task="demo.echo") == 1
    assert sample(found, "jobrunner_jobs_submitted_total", queue="free", task="demo.echo") == 1
    assert sample(found, "jobrunner_jobs_completed_total", queue="pro", status="succeeded") == 1
    assert sample(found, "jobrunner_job_duration_seconds_count", task="demo.echo") == 1
    assert sample(found, "jobrunner_job_duration_seconds_bucket", task="demo.echo", le="+Inf") == 1
    assert sample(found, "jobrunner_jobs_deferred", queue="free") == 1
    assert sample(found, "jobrunner_queue_length", queue="free") == 0
    for plan in api.settings.plans:
        assert sample(found, "jobrunner_active_workers", queue=plan) == 1
        assert sample(found, "jobrunner_jobs_running", queue=plan) == 0
    assert sample(found, "jobrunner_workers") == 1
    assert sample(found, "jobrunner_worker_slots") == api.settings.concurrency

    scraper = {"Accept": "application/openmetrics-text; version=1.0.0"}
    openmetrics = await client.get("/metrics", headers=scraper)
    assert openmetrics.headers["content-type"].startswith("application/openmetrics-text")
    assert openmetrics.text.rstrip().endswith("# EOF")


async def test_every_api_process_reports_the_same_numbers(
    client: httpx.AsyncClient, api: ApiServices, settings: Settings
) -> None:
    await api.runner.enqueue("demo.echo", {}, plan="business")
    other_app = create_app(settings)
    async with (
        LifespanManager(other_app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=other_app), base_url="http://other.test"
        ) as other,
    ):
        mine, theirs = (await client.get("/metrics")).text, (await other.get("/metrics")).text
    assert mine == theirs
    assert sample(samples(mine), "jobrunner_queue_length", queue="business") == 1


async def test_metrics_want_the_metrics_token_when_one_is_set(
    redis_url: str, key_prefix: str, tmp_path: Path
) -> None:
    settings = api_settings(redis_url, key_prefix, tmp_path, metrics_token="m3trics-t0ken")
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app)
    async with LifespanManager(app), httpx.AsyncClient(transport=transport) as client:
        url = "http://api.test/metrics"
        none = await client.get(url)
        assert_problem(none, 401, "unauthorized")
        assert none.headers["WWW-Authenticate"].startswith("Bearer")
        assert_problem(await client.get(url, headers=bearer("wrong")), 401, "unauthorized")
        assert_problem(await client.get(url, headers=admin()), 401, "unauthorized")
        ok = await client.get(url, headers=bearer("m3trics-t0ken"))
        assert ok.status_code == 200
        assert "# TYPE jobrunner_jobs_submitted_total counter" in ok.text


async def test_queues_show_each_plan_to_the_admin_only(
    client: httpx.AsyncClient, api: ApiServices, make_key: MakeKey
) -> None:
    await api.runner.enqueue("demo.echo", {}, plan="enterprise")
    await api.runner.enqueue("demo.echo", {}, plan="enterprise", defer_seconds=60)
    reply = await client.get("/api/v1/queues", headers=admin())
    assert reply.status_code == 200
    by_plan = {q["plan"]: q for q in reply.json()["items"]}
    assert set(by_plan) == set(api.settings.plans)
    assert by_plan["enterprise"] == {
        "name": api.runner.keys.queue("enterprise"),
        "plan": "enterprise",
        "queued": 1,
        "running": 0,
        "deferred": 1,
        "workers": 0,
    }
    assert_problem(await client.get("/api/v1/queues"), 401, "unauthorized")
    tenant = bearer(await make_key("acme"))
    assert_problem(await client.get("/api/v1/queues", headers=tenant), 403, "forbidden")
    assert_problem(await client.get("/api/v1/workers", headers=tenant), 403, "forbidden")


async def test_workers_lists_live_workers_with_what_they_run(
    client: httpx.AsyncClient, api: ApiServices, worker: WorkerRunner
) -> None:
    job = await api.runner.enqueue("demo.sleep", {"seconds": 30, "steps": 300}, plan="pro")
    await eventually(lambda: api.runner.get(job.id), lambda r: r.status is JobStatus.RUNNING)

    async def read() -> list[dict[str, object]]:
        items: list[dict[str, object]] = (
            await client.get("/api/v1/workers", headers=admin())
        ).json()["items"]
        return items

    (entry,) = await eventually(read, lambda items: bool(items) and items[0]["running"] == 1)
    assert entry["id"] == worker.worker_id
    assert entry["pid"] == os.getpid()
    assert entry["queues"] == list(api.settings.worker_queues)
    assert "demo.sleep" in entry["tasks"] and entry["tasks"] == sorted(entry["tasks"])
    assert entry["concurrency"] == api.settings.concurrency
    assert str(entry["started_at"]).endswith("Z") and str(entry["last_seen"]).endswith("Z")
    assert str(entry["started_at"]) <= str(entry["last_seen"])
    queues = (await client.get("/api/v1/queues", headers=admin())).json()["items"]
    assert {q["plan"]: q["running"] for q in queues}["pro"] == 1
    await api.runner.cancel(job.id)
