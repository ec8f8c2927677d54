"""Progress: throttled record writes, live events through watch(), wait() with a timeout."""

from __future__ import annotations

import asyncio

import pytest

from jobrunner.domain.status import JobStatus
from jobrunner.errors import JobNotFoundError, WaitTimeoutError
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
    # progress carries its attempt, like the status events around it
    assert {e.attempt for e in events if e.kind == "progress"} == {1}
    milestones = [a for a in await runner.audit(job.id) if a.event == "progress"]
    assert milestones
    assert all(m.progress is not None and m.attempt == 1 for m in milestones)


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


async def _worker(runner: JobRunner) -> WorkerRunner:
    w = WorkerRunner(runner.settings, runner.registry, redis=runner.redis, queues=["free"])
    await w.start()
    return w


async def test_start_and_end_are_published_only_while_someone_watches(runner: JobRunner) -> None:
    quiet = await runner.enqueue("demo.echo", {}, plan="free")
    watched = await runner.enqueue("demo.echo", {}, plan="free")
    listener = runner.redis.pubsub()  # subscribed, but not a watcher: no events for this one
    await listener.subscribe(runner.keys.events(quiet.id))
    watch = runner.watch(watched.id)
    first = await anext(watch)  # the feed is open and counted before the snapshot is read
    assert (first.kind, first.status) == ("snapshot", JobStatus.QUEUED)
    assert await runner.redis.hget(runner.keys.job(watched.id), "watchers") == b"1"
    w = await _worker(runner)
    try:
        rest = [e async for e in watch]
        assert [(e.kind, e.status) for e in rest] == [
            ("status", JobStatus.RUNNING),
            ("status", JobStatus.SUCCEEDED),
        ]
        assert (await runner.wait(quiet.id, timeout=5)).status is JobStatus.SUCCEEDED
    finally:
        await w.stop(grace=0)
    assert await runner.redis.hget(runner.keys.job(watched.id), "watchers") is None
    heard = await listener.get_message(ignore_subscribe_messages=True, timeout=0.1)
    await listener.aclose()  # type: ignore[no-untyped-call]
    assert heard is None


async def test_a_watch_of_an_unknown_job_writes_no_record(runner: JobRunner) -> None:
    with pytest.raises(JobNotFoundError):
        async for _ in runner.watch("0" * 32):
            pass
    assert await runner.redis.exists(runner.keys.job("0" * 32)) == 0
