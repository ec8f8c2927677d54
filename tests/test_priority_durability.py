"""Plan isolation under a large backlog, and jobs surviving a Redis restart (AOF)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from jobrunner.domain.status import JobStatus
from jobrunner.embedded import free_port
from jobrunner.errors import RedisUnavailableError
from jobrunner.runtime import JobRunner
from jobrunner.settings import Settings
from jobrunner.tasks.catalog import build_registry
from jobrunner.worker.runner import WorkerRunner
from tests.conftest import make_settings, start_redis


async def test_enterprise_job_starts_within_one_poll_behind_ten_thousand_free_jobs(
    runner: JobRunner,
) -> None:
    for start in range(0, 10_000, 2_000):
        batch = [
            {"task": "demo.sleep", "params": {"seconds": 0.2, "steps": 1}, "plan": "free"}
            for _ in range(start, start + 2_000)
        ]
        await runner.enqueue_many(batch)
    assert await runner.redis.zcard(runner.keys.queue("free")) == 10_000
    async with WorkerRunner(runner.settings, runner.registry, redis=runner.redis) as w:
        await asyncio.sleep(0.5)  # free borrows the idle capacity, thousands still waiting
        busiest = 0
        for _ in range(20):
            busiest = max(busiest, w.workers["free"].job_counter)
            await asyncio.sleep(0.01)
        others = len(w.slots) - 1  # each keeps one slot in reserve
        assert busiest == runner.settings.concurrency - others
        vip = await runner.enqueue("demo.echo", {"vip": True}, plan="enterprise")
        done = await runner.wait(vip.id, timeout=5)
        free_left = await runner.redis.zcard(runner.keys.queue("free"))
    assert done.status is JobStatus.SUCCEEDED
    assert done.started_at is not None
    waited = (done.started_at - vip.created_at).total_seconds()
    assert waited < runner.settings.poll_delay_seconds, waited
    assert free_left > 9_000


async def test_queued_jobs_and_records_survive_a_redis_restart(
    tmp_path: Path, key_prefix: str
) -> None:
    port = free_port()
    directory = tmp_path / "aof-redis"
    server = start_redis(directory, port, persist=True)
    url = f"redis://127.0.0.1:{port}/0"
    settings: Settings = make_settings(url, key_prefix, tmp_path)
    registry = build_registry(settings)
    try:
        async with JobRunner(settings, registry) as jr:
            jobs = [await jr.enqueue("demo.echo", {"i": i}) for i in range(5)]
        await asyncio.sleep(1.2)  # appendfsync everysec
        server.terminate()
        assert await asyncio.to_thread(server.wait, 10) == 0
        server = start_redis(directory, port, persist=True)
        async with JobRunner(settings, registry) as jr:
            assert (await jr.get(jobs[0].id)).status is JobStatus.QUEUED
            async with WorkerRunner(settings, registry, redis=jr.redis):
                for i, job in enumerate(jobs):
                    done = await jr.wait(job.id, timeout=10)
                    assert done.status is JobStatus.SUCCEEDED
                    assert await jr.result(job.id) == {"i": i}
    finally:
        server.terminate()
        server.wait(10)
    assert (directory / "appendonly.aof").exists() or (directory / "appendonlydir").exists()


async def test_a_running_worker_survives_a_redis_restart(tmp_path: Path, key_prefix: str) -> None:
    port = free_port()
    directory = tmp_path / "restart-redis"
    server = start_redis(directory, port, persist=True)
    settings = make_settings(
        f"redis://127.0.0.1:{port}/0", key_prefix, tmp_path, redis_timeout_seconds=0.5
    )
    registry = build_registry(settings)
    try:
        async with (
            JobRunner(settings, registry) as jr,
            WorkerRunner(settings, registry, redis=jr.redis),
        ):
            before = await jr.enqueue("demo.echo", {"n": 1})
            assert (await jr.wait(before.id, timeout=5)).status is JobStatus.SUCCEEDED
            await asyncio.sleep(1.2)
            server.terminate()
            await asyncio.to_thread(server.wait, 10)
            asked = time.monotonic()
            with pytest.raises(RedisUnavailableError):
                await jr.enqueue("demo.echo", {"n": "lost?"})
            assert time.monotonic() - asked < 3  # a clear error within the deadline, no hang
            server = start_redis(directory, port, persist=True)
            after = await jr.enqueue("demo.echo", {"n": 2})
            assert (await jr.wait(after.id, timeout=15)).status is JobStatus.SUCCEEDED
    finally:
        server.terminate()
        server.wait(10)
