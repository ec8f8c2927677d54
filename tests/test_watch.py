"""Progress: throttled record writes, live events through watch(), wait() with a timeout."""

from __future__ import annotations

import asyncio

import pytest

from jobrunner.domain.status import JobStatus
from jobrunner.errors import WaitTimeoutError
from jobrunner.runtime import JobRunner
from jobrunner.worker.runner import WorkerRunner


async def test_watch_streams_progress_and_ends_at_a_terminal_status(
    runner: JobRunner, worker: WorkerRunner
) -> None:
    job = await runner.enqueue("demo.sleep", {"seconds": 0.6, "steps": 6})
    events = [e async for e in runner.watch(job.id)]
    assert events[0].kind == "snapshot"
    progress = [e.progress for e in events if e.kind == "progress"]
    assert progress == sorted(progress)
    assert len(progress) >= 3
    assert progress[-1] == 100
    assert events[-1].status is JobStatus.SUCCEEDED
    assert any(e.message and e.message.startswith("step") for e in events)
    milestones = [a.progress for a in await runner.audit(job.id) if a.event == "progress"]
    assert milestones
    assert all(m is not None for m in milestones)


async def test_watch_of_a_finished_job_yields_one_snapshot(
    runner: JobRunner, worker: WorkerRunner
) -> None:
    job = await runner.enqueue("demo.echo", {})
    await runner.wait(job.id, timeout=5)
    events = [e async for e in runner.watch(job.id)]
    assert len(events) == 1
    assert events[0].status is JobStatus.SUCCEEDED


async def test_progress_is_visible_on_the_record_while_running(
    runner: JobRunner, worker: WorkerRunner
) -> None:
    job = await runner.enqueue("demo.sleep", {"seconds": 1.5, "steps": 30})
    await asyncio.sleep(0.8)
    record = await runner.get(job.id)
    assert record.status is JobStatus.RUNNING
    assert 10 <= record.progress < 100
    assert record.message
    assert record.message.startswith("step")
    await runner.cancel(job.id)


async def test_wait_times_out_with_a_typed_error(runner: JobRunner) -> None:
    job = await runner.enqueue("demo.echo", {})  # no worker: it stays queued
    with pytest.raises(WaitTimeoutError):
        await runner.wait(job.id, timeout=0.3)
