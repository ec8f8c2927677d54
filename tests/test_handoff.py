"""Hand-off: a submit that finds a worker registered idle on its queue starts the job for it
and pushes it to the worker's list, which the worker is blocked on (no wake message, no claim
round trip); the queue stays the path of every other job."""

from __future__ import annotations

import asyncio
import time

import pytest

from jobrunner.domain.status import JobStatus
from jobrunner.errors import RedisUnavailableError
from jobrunner.runtime import JobRunner
from jobrunner.store.keys import Keys, arq_in_progress
from jobrunner.worker.runner import WorkerRunner
from tests.polling import eventually


def _idle_key(runner: JobRunner, plan: str = "free") -> str:
    return Keys.idle(runner.keys.queue(plan))


async def registered(runner: JobRunner, worker: WorkerRunner) -> None:
    """Until the worker's claim calls have registered it idle on the free queue."""

    async def members() -> list[bytes]:
        return list(await runner.redis.zrange(_idle_key(runner), 0, -1))

    await eventually(
        members, lambda found: any(m.startswith(worker.worker_id.encode()) for m in found)
    )


async def test_an_idle_worker_is_handed_the_job(runner: JobRunner, worker: WorkerRunner) -> None:
    await registered(runner, worker)
    job = await runner.enqueue("demo.echo", {"a": 1})
    done = await runner.wait(job.id, timeout=10)
    assert done.status is JobStatus.SUCCEEDED and done.attempts == 1
    assert worker._handoff is not None and worker._handoff.handed == 1
    events = [(a.event, a.worker_id) for a in await runner.audit(job.id)]
    assert events[:2] == [("enqueued", None), ("started", worker.worker_id)]


async def ghost(
    runner: JobRunner, tasks: str = ",demo.echo,", plan: str = "free", name: str = "ghost"
) -> str:
    """A worker registered idle that will never read its list (it died right after)."""
    member = f"{name}|{tasks}"
    until = time.time() * 1000 + 60_000
    await runner.redis.zadd(_idle_key(runner, plan), {member: until})
    return member


async def test_a_job_handed_to_a_dead_worker_runs_elsewhere_when_its_lease_lapses(
    runner: JobRunner,
) -> None:
    await ghost(runner)
    job = await runner.enqueue("demo.echo", {"a": 1})
    held = await runner.get(job.id)
    assert held.status is JobStatus.RUNNING and held.worker_id == "ghost"
    assert await runner.redis.get(arq_in_progress(job.id)) == b"ghost"
    assert await runner.redis.zcard(_idle_key(runner)) == 0  # one job per registration
    assert await runner.redis.llen(runner.keys.handoff("ghost")) == 1
    async with WorkerRunner(runner.settings, runner.registry, redis=runner.redis):
        done = await runner.wait(job.id, timeout=runner.settings.lease_seconds + 10)
    assert done.status is JobStatus.SUCCEEDED
    assert (done.attempts, done.interruptions) == (2, 1)  # the lost attempt, then a real one


async def test_a_worker_without_the_task_is_not_handed_it(runner: JobRunner) -> None:
    member = await ghost(runner, tasks=",demo.sleep,")
    job = await runner.enqueue("demo.echo", {})
    assert (await runner.get(job.id)).status is JobStatus.QUEUED
    assert await runner.redis.zscore(_idle_key(runner), member) is not None
    assert await runner.redis.exists(runner.keys.handoff("ghost")) == 0


async def test_a_deferred_job_is_not_handed_off(runner: JobRunner) -> None:
    await ghost(runner)
    job = await runner.enqueue("demo.echo", {}, defer_seconds=60)
    assert (await runner.get(job.id)).status is JobStatus.QUEUED
    assert await runner.redis.zcard(_idle_key(runner)) == 1


async def test_a_stopped_worker_leaves_the_idle_set(runner: JobRunner) -> None:
    worker = WorkerRunner(runner.settings, runner.registry, redis=runner.redis)
    await worker.start()
    await registered(runner, worker)
    await worker.stop()
    left = await runner.redis.zrange(_idle_key(runner), 0, -1)
    assert not any(m.startswith(worker.worker_id.encode()) for m in left)
    job = await runner.enqueue("demo.echo", {})
    assert (await runner.get(job.id)).status is JobStatus.QUEUED


async def test_a_burst_over_two_workers_runs_every_job_once(runner: JobRunner) -> None:
    async with (
        WorkerRunner(runner.settings, runner.registry, redis=runner.redis) as first,
        WorkerRunner(runner.settings, runner.registry, redis=runner.redis) as second,
    ):
        await registered(runner, first)
        await registered(runner, second)
        jobs = []
        for _ in range(10):  # bursts from idle: some handed off, the rest queued
            jobs += await asyncio.gather(*(runner.enqueue("demo.echo", {}) for _ in range(20)))
            await asyncio.sleep(0)
        done = [await runner.wait(j.id, timeout=20) for j in jobs]
        assert first._handoff is not None and second._handoff is not None
        handed = first._handoff.handed + second._handoff.handed
    assert all(d.status is JobStatus.SUCCEEDED for d in done)
    assert {(d.attempts, d.interruptions) for d in done} == {(1, 0)}
    assert handed >= 1


async def test_a_submit_that_fails_half_way_takes_its_hand_off_back(runner: JobRunner) -> None:
    member = await ghost(runner, name=f"ghost-{runner.keys.prefix}")
    planted = runner.keys.task_index("acme", "demo.echo")
    await runner.redis.set(planted, "not a zset")
    with pytest.raises(RedisUnavailableError, match="WRONGTYPE"):
        await runner.enqueue("demo.echo", {}, tenant="acme")
    assert await runner.redis.llen(runner.keys.handoff(f"ghost-{runner.keys.prefix}")) == 0
    leases = [k async for k in runner.redis.scan_iter(match="arq:in-progress:*")]
    holders = [await runner.redis.get(k) for k in leases]
    assert f"ghost-{runner.keys.prefix}".encode() not in holders
    assert await runner.redis.zscore(_idle_key(runner), member) is not None
