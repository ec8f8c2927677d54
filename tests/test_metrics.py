"""Cluster-wide metrics in Redis: counters from the Lua scripts, durations from heartbeats,
queue gauges from arq's zsets and the worker registry."""

from __future__ import annotations

import time

from jobrunner.domain.status import JobStatus
from jobrunner.runtime import JobRunner
from jobrunner.store.maintenance import expire_overdue
from jobrunner.worker.runner import WorkerRunner
from tests.polling import eventually


async def test_submitted_counts_each_created_job_once_by_queue_and_task(runner: JobRunner) -> None:
    await runner.enqueue("demo.echo", {}, plan="pro")
    await runner.enqueue("demo.echo", {"n": 1}, plan="pro", idempotency_key="k")
    await runner.enqueue("demo.echo", {"n": 1}, plan="pro", idempotency_key="k")  # a replay
    await runner.enqueue_many([{"task": "demo.sleep", "params": {"seconds": 0}} for _ in range(3)])
    snapshot = await runner.metrics()
    assert snapshot.submitted == {("pro", "demo.echo"): 2, ("free", "demo.sleep"): 3}
    assert snapshot.completed == {}


async def test_completed_counts_every_terminal_status_once(
    runner: JobRunner, worker: WorkerRunner
) -> None:
    ok = await runner.enqueue("demo.echo", {}, plan="business")
    retried = await runner.enqueue("demo.flaky", {"fail_times": 1}, plan="business")
    failed = await runner.enqueue("demo.flaky", {"fail_times": -1}, plan="business")
    for job in (ok, retried, failed):
        await runner.wait(job.id, timeout=10)
    waiting = await runner.enqueue("demo.echo", {}, defer_seconds=60)
    await runner.cancel(waiting.id)
    stale = await runner.enqueue("demo.echo", {}, defer_seconds=60, ttl_seconds=1)
    await expire_overdue(runner.store, time.time() * 1000 + 120_000)
    assert (await runner.get(stale.id)).status is JobStatus.EXPIRED
    snapshot = await runner.metrics()
    assert snapshot.completed == {
        ("business", "succeeded"): 2,  # the retried job counts once, when it ends
        ("business", "failed"): 1,
        ("free", "cancelled"): 1,
        ("free", "expired"): 1,
    }


async def test_attempt_durations_reach_redis_with_the_heartbeat(
    runner: JobRunner, worker: WorkerRunner
) -> None:
    jobs = [await runner.enqueue("demo.sleep", {"seconds": 0.3, "steps": 1}) for _ in range(2)]
    await runner.enqueue("demo.flaky", {"fail_times": 1})  # two attempts, both timed
    for job in jobs:
        await runner.wait(job.id, timeout=10)
    snapshot = await eventually(
        runner.metrics,
        lambda s: (
            s.durations.get("demo.sleep") is not None
            and s.durations["demo.sleep"].count == 2
            and s.durations.get("demo.flaky") is not None
            and s.durations["demo.flaky"].count == 2
        ),
    )
    sleeps = snapshot.durations["demo.sleep"]
    assert sleeps.count == 2
    assert 0.6 <= sleeps.total_seconds < 3
    assert sum(sleeps.buckets.values()) == 2
    assert all(0.25 < upper <= 5 for upper in sleeps.buckets)
    assert snapshot.durations["demo.flaky"].count == 2


async def test_a_stopping_worker_flushes_what_its_last_beat_missed(runner: JobRunner) -> None:
    quiet = {"heartbeat_seconds": 60.0, "lease_seconds": 600.0}  # no beat before the stop
    settings = runner.settings.model_copy(update=quiet)
    w = WorkerRunner(settings, runner.registry, redis=runner.redis)
    async with w:
        await runner.wait((await runner.enqueue("demo.echo", {})).id, timeout=5)
    snapshot = await runner.metrics()
    assert snapshot.durations["demo.echo"].count == 1


async def test_queue_stats_count_queued_deferred_running_and_workers(runner: JobRunner) -> None:
    for _ in range(3):
        await runner.enqueue("demo.echo", {}, plan="pro")
    await runner.enqueue("demo.echo", {}, plan="pro", defer_seconds=600)
    stats = {q.plan: q for q in await runner.queues()}
    assert set(stats) == set(runner.settings.plans)
    pro = stats["pro"]
    assert (pro.queued, pro.deferred, pro.running, pro.workers) == (3, 1, 0, 0)
    assert pro.name == runner.keys.queue("pro")
    assert stats["free"].queued == 0

    settings = runner.settings.model_copy(update={"worker_queues": ("enterprise", "free")})
    async with WorkerRunner(settings, runner.registry, redis=runner.redis):
        running = await runner.enqueue("demo.sleep", {"seconds": 30, "steps": 30}, plan="free")
        await eventually(lambda: runner.get(running.id), lambda r: r.status == "running")
        stats = {
            q.plan: q
            for q in await eventually(
                runner.queues, lambda qs: any(q.running for q in qs if q.plan == "free")
            )
        }
        assert (stats["free"].queued, stats["free"].running, stats["free"].workers) == (0, 1, 1)
        assert (stats["enterprise"].workers, stats["pro"].workers) == (1, 0)
        assert stats["pro"].queued == 3  # nobody serves pro
        (entry,) = await runner.workers()
        assert entry["running_by_queue"] == {"enterprise": 0, "free": 1}
        assert entry["started_at_ms"] <= entry["last_seen_ms"]
        await runner.cancel(running.id)
