"""Cancellation of queued jobs (never start) and running ones (CancelledError, finally runs)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from pydantic import BaseModel

from jobrunner.context import JobContext
from jobrunner.domain.status import JobStatus
from jobrunner.errors import JobNotCancellableError
from jobrunner.registry import task
from jobrunner.runtime import JobRunner
from jobrunner.settings import Settings
from jobrunner.tasks.catalog import build_registry
from jobrunner.worker.runner import WorkerRunner
from tests.conftest import make_settings

CLEANED_UP: list[str] = []


class Nothing(BaseModel):
    pass


@task("test.block")
async def block(ctx: JobContext, params: Nothing) -> None:
    try:
        await asyncio.sleep(60)
    finally:
        CLEANED_UP.append(ctx.job_id)


async def test_cancel_queued_job_never_starts(runner: JobRunner) -> None:
    job = await runner.enqueue("demo.echo", {})
    cancelled = await runner.cancel(job.id)
    assert cancelled.status is JobStatus.CANCELLED
    assert await runner.redis.zscore(runner.keys.queue("free"), job.id) is None
    w = WorkerRunner(runner.settings, runner.registry, redis=runner.redis)
    async with w:
        await asyncio.sleep(0.3)
    record = await runner.get(job.id)
    assert record.status is JobStatus.CANCELLED
    assert record.attempts == 0
    assert [a.event for a in await runner.audit(job.id)] == ["enqueued", "cancelled"]


async def test_cancel_running_job_cancels_its_coroutine(settings: Settings) -> None:
    registry = build_registry(settings).merged([block])
    async with (
        JobRunner(settings, registry) as runner,
        WorkerRunner(settings, registry, redis=runner.redis),
    ):
        job = await runner.enqueue("test.block", {})
        async for event in runner.watch(job.id):
            if event.status is JobStatus.RUNNING:
                break
        asked = time.monotonic()
        requested = await runner.cancel(job.id)
        assert requested.cancel_requested
        done = await runner.wait(job.id, timeout=5)
        elapsed = time.monotonic() - asked
        events = [a.event for a in await runner.audit(job.id)]
    assert done.status is JobStatus.CANCELLED
    assert elapsed < 1.5
    assert job.id in CLEANED_UP  # the task's finally block ran
    assert events[-2:] == ["cancel_requested", "cancelled"]


async def test_cancel_finished_job_is_refused(runner: JobRunner, worker: WorkerRunner) -> None:
    job = await runner.enqueue("demo.echo", {})
    await runner.wait(job.id, timeout=5)
    with pytest.raises(JobNotCancellableError):
        await runner.cancel(job.id)


async def test_cancel_during_retry_backoff_stops_further_attempts(
    redis_url: str, key_prefix: str, tmp_path: Path
) -> None:
    settings = make_settings(
        redis_url, key_prefix, tmp_path, retry_base_seconds=300, retry_cap_seconds=600
    )
    registry = build_registry(settings)
    async with (
        JobRunner(settings, registry) as runner,
        WorkerRunner(settings, registry, redis=runner.redis),
    ):
        job = await runner.enqueue("demo.flaky", {"fail_times": 5}, max_tries=5)
        async for event in runner.watch(job.id):
            if event.status is JobStatus.RETRYING:
                break
        cancelled = await runner.cancel(job.id)
        assert cancelled.status is JobStatus.CANCELLED
        assert await runner.redis.zscore(runner.keys.queue("free"), job.id) is None
        record = await runner.get(job.id)
    assert record.attempts == 1
    assert record.next_attempt_at is None
