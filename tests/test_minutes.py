"""Per-minute figures: percentiles read back from the run-time buckets, the recorder's drain and
restore, and a worker's heartbeat carrying what it ended into Redis (no call per job)."""

from __future__ import annotations

import asyncio
import random
import statistics
import time

import pytest

from jobrunner.domain.minutes import (
    MINUTE_MS,
    RUN_BUCKETS,
    MinuteFigures,
    MinuteRecorder,
    merged,
    minute_of,
    quantile,
    run_bucket,
)
from jobrunner.registry import Registry
from jobrunner.runtime import JobRunner
from jobrunner.settings import Settings
from jobrunner.store.minutes import KEEP_SECONDS, MinuteStats
from jobrunner.worker.runner import WorkerRunner


def figures_of(samples: list[float]) -> MinuteFigures:
    recorder = MinuteRecorder()
    for seconds in samples:
        recorder.observe("pro", "succeeded", seconds, 0)
    return recorder.drain()[0]


@pytest.mark.parametrize("q", [0.5, 0.9, 0.95, 0.99])
def test_percentiles_from_the_buckets_are_within_the_bucket_width(q: float) -> None:
    rng = random.Random(3)
    samples = [rng.lognormvariate(0, 1.5) for _ in range(5000)]
    truth = statistics.quantiles(samples, n=1000)[int(q * 1000) - 1]
    estimate = quantile(figures_of(samples).runs, q)
    assert estimate is not None and abs(estimate - truth) / truth < 0.13


def test_quantile_edges() -> None:
    assert quantile({}, 0.5) is None
    assert quantile(figures_of([0.0]).runs, 0.5) == RUN_BUCKETS[0]
    one = quantile(figures_of([2.0]).runs, 0.5)
    assert one is not None and 2.0 / 1.25 <= one <= 2.0 * 1.25
    huge = quantile(figures_of([10**7]).runs, 0.99)
    assert huge == RUN_BUCKETS[-1] and run_bucket(10**7) == len(RUN_BUCKETS)


def test_the_recorder_keeps_minutes_apart_and_restores_a_failed_flush() -> None:
    recorder = MinuteRecorder()
    recorder.observe("pro", "succeeded", 1.0, 5 * MINUTE_MS + 1)
    recorder.observe("pro", "failed", 2.0, 5 * MINUTE_MS + 59_999)
    recorder.observe("free", "cancelled", None, 6 * MINUTE_MS)
    drained = recorder.drain()
    assert not recorder and sorted(drained) == [5, 6]
    assert drained[5].count(plan="pro") == 2 and sum(drained[5].runs.values()) == 2
    assert drained[6].count(statuses=["cancelled"]) == 1 and drained[6].runs == {}
    recorder.observe("pro", "succeeded", 1.0, 5 * MINUTE_MS)
    recorder.restore(drained)
    again = recorder.drain()
    assert again[5].count(plan="pro", statuses=["succeeded"]) == 2
    assert merged(again.values()).count() == 4


async def test_a_workers_heartbeat_adds_the_jobs_it_ended(
    runner: JobRunner, worker: WorkerRunner
) -> None:
    jobs = [await runner.enqueue("demo.echo", {}, plan="pro") for _ in range(4)]
    jobs.append(await runner.enqueue("demo.flaky", {"fail_times": -1}, plan="free", max_tries=1))
    for job in jobs:
        await runner.wait(job.id, timeout=10)
    stats = MinuteStats(runner.redis, runner.keys)
    deadline = time.monotonic() + 10
    while True:
        now = minute_of(time.time() * 1000)
        seen = merged((await stats.read(now, 2)).values())
        if seen.count() >= 5 or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.05)
    assert seen.count(plan="pro", statuses=["succeeded"]) == 4
    assert seen.count(plan="free", statuses=["failed"]) == 1
    assert sum(seen.runs.values()) == 5  # succeeded and failed runs are timed
    p95 = quantile(seen.runs, 0.95)
    assert p95 is not None and p95 < 5
    # the jobs may have ended in the minute before ``now``: check every minute that holds some
    read = await stats.read(now, 2)
    minutes_with_jobs = [minute for minute, figures in read.items() if figures.count()]
    assert minutes_with_jobs
    for minute in minutes_with_jobs:
        ttl = await runner.redis.ttl(runner.keys.minute_figures(minute))
        assert 0 < ttl <= KEEP_SECONDS


async def test_a_stopping_worker_flushes_what_it_saw_since_its_last_beat(
    runner: JobRunner, settings: Settings, registry: Registry
) -> None:
    worker = WorkerRunner(settings, registry, redis=runner.redis)
    await worker.start()
    worker.services.minutes.observe("pro", "succeeded", 0.5, time.time() * 1000)
    await worker.stop(grace=0)
    stats = MinuteStats(runner.redis, runner.keys)
    seen = merged((await stats.read(minute_of(time.time() * 1000), 2)).values())
    assert seen.count(plan="pro", statuses=["succeeded"]) == 1
