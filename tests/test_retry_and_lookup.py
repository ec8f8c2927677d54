"""JobRunner for operators and people: retry, short ids, and a warning when nothing serves a queue;
a worker whose stop is asked for twice stops its jobs at once."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from structlog.testing import capture_logs

from jobrunner.domain.status import JobStatus
from jobrunner.errors import AmbiguousJobIdError, JobNotFoundError, JobNotRetryableError
from jobrunner.registry import Registry
from jobrunner.runtime import JobRunner
from jobrunner.serving import UnservedQueues
from jobrunner.settings import Settings
from jobrunner.worker.runner import WorkerRunner


async def test_retry_repeats_a_failed_job_as_a_new_one(
    runner: JobRunner, worker: WorkerRunner
) -> None:
    failed = await runner.enqueue("demo.flaky", {"fail_times": -1}, tenant="acme", plan="pro",
                                  priority=3, max_tries=2, correlation_id="req-9")  # fmt: skip
    assert (await runner.wait(failed.id, timeout=10)).status is JobStatus.FAILED
    again = await runner.retry(failed.id)
    assert again.id != failed.id and again.retry_of == failed.id
    assert (again.task, again.params, again.tenant, again.plan, again.priority) == (
        "demo.flaky", {"fail_times": -1}, "acme", "pro", 3
    )  # fmt: skip
    assert (again.max_tries, again.correlation_id, again.status) == (2, "req-9", JobStatus.QUEUED)
    assert (await runner.wait(again.id, timeout=10)).status is JobStatus.FAILED
    ok = await runner.enqueue("demo.echo", {})
    await runner.wait(ok.id, timeout=10)
    with pytest.raises(JobNotRetryableError) as refused:
        await runner.retry(ok.id)
    assert refused.value.details == {"status": "succeeded"}


async def test_cancelled_jobs_can_be_retried_waiting_ones_cannot(runner: JobRunner) -> None:
    waiting = await runner.enqueue("demo.echo", {"n": 1}, defer_seconds=300)
    with pytest.raises(JobNotRetryableError, match="is queued"):
        await runner.retry(waiting.id)
    await runner.cancel(waiting.id)
    again = await runner.retry(waiting.id)
    assert again.retry_of == waiting.id and again.params == {"n": 1}


async def test_resolve_id(runner: JobRunner) -> None:
    job = await runner.enqueue("demo.echo", {}, tenant="acme", defer_seconds=300)
    assert await runner.resolve_id(job.id) == job.id
    assert await runner.resolve_id(job.id[:8]) == job.id
    assert await runner.resolve_id(f"  {job.id[:10].upper()} ") == job.id
    with pytest.raises(AmbiguousJobIdError, match="too short"):
        await runner.resolve_id(job.id[:7])
    for unknown in ("ffffffffff", "not-hex!", ""):
        if unknown != job.id[:10]:
            with pytest.raises(JobNotFoundError):
                await runner.resolve_id(unknown)


async def test_enqueue_warns_when_no_live_worker_serves_the_queue(
    settings: Settings, registry: Registry
) -> None:
    async with JobRunner(settings, registry) as jr:
        with capture_logs() as logs:
            await jr.enqueue("demo.echo", {}, plan="pro")
            await jr.enqueue("demo.echo", {}, plan="pro")  # within a few seconds: said once
            await jr.enqueue_many([{"task": "demo.echo", "plan": "free"}])
        warned = [e for e in logs if e["log_level"] == "warning"]
        assert [(e["event"], e["queue"]) for e in warned] == [
            ("no live worker serves this queue; its jobs wait for one", "pro"),
            ("no live worker serves this queue; its jobs wait for one", "free"),
        ]
        async with WorkerRunner(settings, registry, redis=jr.redis, queues=["business"],
                                concurrency=1):  # fmt: skip
            assert await jr.serves("business") and not await jr.serves("pro")
            with capture_logs() as logs:
                await jr.enqueue("demo.echo", {}, plan="business")
            # no warning (the worker may well have run the job meanwhile: its info line)
            assert [e for e in logs if e["log_level"] != "info"] == []
    async with JobRunner(settings, registry, warn_unserved=False) as quiet:
        with capture_logs() as logs:
            await quiet.enqueue("demo.echo", {}, plan="enterprise")
        assert logs == []


async def test_unserved_queues_are_looked_up_at_most_every_few_seconds() -> None:
    asked = [0]
    now = [100.0]

    async def live() -> list[dict[str, Any]]:
        asked[0] += 1
        return [{"id": "w", "queues": ["pro"], "tasks": ["demo.echo"]}]

    check = UnservedQueues(live, every=5.0, clock=lambda: now[0])
    with capture_logs() as logs:
        await check.check("pro", "demo.echo")
        await check.check("pro", "demo.echo")
        await check.check("free", "demo.echo")
        await check.check("pro", "demo.sleep")
        now[0] += 5.0
        await check.check("pro", "demo.echo")
    assert asked[0] == 4
    assert [(e["queue"], e.get("task")) for e in logs] == [("free", None), ("pro", "demo.sleep")]


async def test_asked_twice_to_stop_a_worker_stops_running_jobs_at_once(
    settings: Settings, registry: Registry, runner: JobRunner
) -> None:
    worker = WorkerRunner(settings.model_copy(update={"shutdown_grace_seconds": 60}), registry,
                          redis=runner.redis)  # fmt: skip
    await worker.start()
    job = await runner.enqueue("demo.sleep", {"seconds": 60, "steps": 60})
    async with asyncio.timeout(10):
        async for event in runner.watch(job.id):
            if event.status is JobStatus.RUNNING:
                break
    worker.request_stop()
    stopping = asyncio.create_task(worker.stop())
    await asyncio.sleep(0.2)
    assert not stopping.done()  # draining: the job has 60 s
    worker.request_stop()
    await asyncio.wait_for(stopping, 10)
    record = await runner.get(job.id)
    assert record.status is JobStatus.QUEUED and record.interruptions == 1
