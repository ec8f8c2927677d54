"""Reconcile: records and arq's queue agree, and a job a worker holds is never touched."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from jobrunner.domain.models import AuditEntry
from jobrunner.domain.status import JobStatus
from jobrunner.registry import Registry
from jobrunner.runtime import JobRunner
from jobrunner.settings import Settings
from jobrunner.store.jobs import Transition
from jobrunner.store.keys import arq_in_progress, arq_job, arq_retry
from jobrunner.store.reconcile import ReconcileCounts, Reconciler
from jobrunner.tasks.upkeep import Upkeep, arq_payload
from jobrunner.worker.runner import WorkerRunner

MINUTE_MS = 60_000


async def _running(runner: JobRunner, *, max_tries: int = 3, started_ago_ms: float = MINUTE_MS):
    """A job a worker claimed and then lost: record running, arq entry far in the future (a
    running job's entry may sit at any score), no lease."""
    job = await runner.enqueue("demo.echo", {"message": "hi"}, tenant="t", max_tries=max_tries)
    started = time.time() * 1000 - started_ago_ms
    change = Transition(
        target=JobStatus.RUNNING,
        fields={"started_at": started, "attempts": 1, "worker_id": "gone"},
        audit=AuditEntry(at=datetime.now(tz=UTC), event="started", status=JobStatus.RUNNING),
    )
    assert await runner.store.transition(job.id, change, started)
    await runner.redis.incr(arq_retry(job.id))  # arq counts each pickup
    await runner.redis.zadd(job.queue, {job.id: time.time() * 1000 + 3_600_000})
    return job


def _upkeep(runner: JobRunner) -> Upkeep:
    return Upkeep(runner.store, runner.blobs, runner.settings)


async def _score(runner: JobRunner, queue: str, job_id: str) -> float | None:
    return await runner.redis.zscore(queue, job_id)


async def test_a_running_job_whose_lease_is_gone_runs_again(
    runner: JobRunner, settings: Settings, registry: Registry
) -> None:
    job = await _running(runner)
    report = await _upkeep(runner).reconcile()
    assert report["running_requeued"] == 1 and report["running_failed"] == 0
    record = await runner.get(job.id)
    assert record.status is JobStatus.QUEUED and record.interruptions == 1
    assert (await _score(runner, job.queue, job.id) or 0) <= time.time() * 1000
    assert "lease_lost" in [entry.event for entry in await runner.audit(job.id)]
    async with WorkerRunner(settings, registry, redis=runner.redis):
        done = await runner.wait(job.id, timeout=10)
    assert done.status is JobStatus.SUCCEEDED and done.attempts == 2


async def test_a_running_job_past_its_tries_fails_with_lease_lost(runner: JobRunner) -> None:
    job = await _running(runner, max_tries=1)
    report = await _upkeep(runner).reconcile()
    assert report["running_failed"] == 1
    record = await runner.get(job.id)
    assert record.status is JobStatus.FAILED
    assert record.error is not None and record.error.code == "lease_lost"
    assert await _score(runner, job.queue, job.id) is None
    assert not await runner.redis.exists(arq_job(job.id))
    assert (await runner.list("t", status="failed")).total == 1


async def test_a_live_lease_or_a_fresh_start_is_never_touched(runner: JobRunner) -> None:
    leased = await _running(runner)
    await runner.redis.set(arq_in_progress(leased.id), "1", px=60_000)
    fresh = await _running(runner, started_ago_ms=0)  # inside the grace
    score = await _score(runner, leased.queue, leased.id)
    report = await _upkeep(runner).reconcile()
    assert report["running_requeued"] == report["running_failed"] == 0
    for job in (leased, fresh):
        assert (await runner.get(job.id)).status is JobStatus.RUNNING
    assert await _score(runner, leased.queue, leased.id) == score


async def test_a_lease_taken_after_the_page_was_read_wins(runner: JobRunner) -> None:
    """The fix checks the lease again inside its Lua call: a worker claiming the job between
    the page read and the fix keeps it."""
    job = await _running(runner)
    raw = await runner.redis.hgetall(runner.keys.job(job.id))
    fields = {k.decode(): v.decode() for k, v in raw.items()}
    await runner.redis.set(arq_in_progress(job.id), "1", px=60_000)  # claimed meanwhile
    payload = arq_payload(runner.settings)
    reconciler = Reconciler(runner.store, queues=[job.queue], batch=10, grace_ms=0, payload=payload)
    counts = ReconcileCounts()
    assert await reconciler._fix_running(job.id, fields, time.time() * 1000, counts) is None
    assert counts.left_alone == 1
    assert (await runner.get(job.id)).status is JobStatus.RUNNING


async def test_a_queued_job_missing_from_arqs_queue_is_put_back(
    runner: JobRunner, settings: Settings, registry: Registry
) -> None:
    old = time.time() * 1000 - MINUTE_MS
    job = await runner.enqueue("demo.echo", {"message": "hi"}, tenant="t")
    await runner.redis.hset(runner.keys.job(job.id), "created_at", repr(old))
    await runner.redis.zrem(job.queue, job.id)
    await runner.redis.delete(arq_job(job.id))  # its payload too: rebuilt from the record
    young = await runner.enqueue("demo.echo", {"message": "hi"}, tenant="t")
    await runner.redis.zrem(young.queue, young.id)  # e.g. a submit in flight: left alone
    report = await _upkeep(runner).reconcile()
    assert report["queued_reenqueued"] == 1
    assert await _score(runner, job.queue, job.id) is not None
    assert await _score(runner, young.queue, young.id) is None
    assert "reconciled" in [entry.event for entry in await runner.audit(job.id)]
    async with WorkerRunner(settings, registry, redis=runner.redis):
        done = await runner.wait(job.id, timeout=10)
    assert done.status is JobStatus.SUCCEEDED


async def test_an_arq_entry_with_nothing_behind_it_is_dropped(runner: JobRunner) -> None:
    queue = runner.keys.queue("free")
    orphans = [f"{i:032x}" for i in range(5)]
    await runner.redis.zadd(queue, {job_id: 1 for job_id in orphans})
    raw_arq = "f" * 32  # a job enqueued with arq itself: its job key stands behind it
    await runner.redis.zadd(queue, {raw_arq: 1})
    await runner.redis.set(arq_job(raw_arq), b"{}", px=60_000)
    live = await runner.enqueue("demo.echo", {}, tenant="t")
    small = runner.settings.model_copy(update={"maintenance_batch": 2})
    upkeep = Upkeep(runner.store, runner.blobs, small)
    report = await upkeep.reconcile()
    assert report["orphans_dropped"] == 5
    left = await runner.redis.zrange(queue, 0, -1)
    assert sorted(left) == sorted([raw_arq.encode(), live.id.encode()])


async def test_a_lost_running_job_that_was_asked_to_stop_ends_cancelled(runner: JobRunner) -> None:
    job = await _running(runner)
    await runner.redis.hset(runner.keys.job(job.id), "cancel_requested", "1")
    report = await _upkeep(runner).reconcile()
    assert report["running_cancelled"] == 1 and report["running_requeued"] == 0
    assert (await runner.get(job.id)).status is JobStatus.CANCELLED
    assert await _score(runner, job.queue, job.id) is None


async def test_dead_running_jobs_are_all_requeued_in_one_pass_of_small_pages(
    runner: JobRunner,
) -> None:
    jobs = [await _running(runner) for _ in range(5)]
    small = runner.settings.model_copy(update={"maintenance_batch": 2})
    report = await Upkeep(runner.store, runner.blobs, small).reconcile()
    assert report["running_requeued"] == 5  # the walk pages a snapshot: a fix skips nothing
    for job in jobs:
        assert (await runner.get(job.id)).status is JobStatus.QUEUED
    assert await runner.redis.exists(runner.keys.running_snapshot) == 0
