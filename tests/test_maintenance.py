"""Cron maintenance: overdue waiting jobs expire, index entries of purged records go away."""

from __future__ import annotations

import time

from jobrunner.domain.status import JobStatus
from jobrunner.runtime import JobRunner
from jobrunner.store.keys import ARQ_ABORT
from jobrunner.store.maintenance import expire_overdue, prune_finished
from jobrunner.worker.runner import WorkerRunner


async def test_expire_overdue_marks_waiting_jobs_past_their_ttl(runner: JobRunner) -> None:
    due = await runner.enqueue("demo.echo", {}, ttl_seconds=0.05)
    fresh = await runner.enqueue("demo.echo", {}, ttl_seconds=3600)
    assert await expire_overdue(runner.store, time.time() * 1000 + 100) == 1
    assert (await runner.get(due.id)).status is JobStatus.EXPIRED
    assert (await runner.get(fresh.id)).status is JobStatus.QUEUED
    assert (await runner.list(status="expired")).total == 1


async def test_prune_finished_drops_index_entries_after_the_record_ttl(
    runner: JobRunner, worker: WorkerRunner
) -> None:
    job = await runner.enqueue("demo.echo", {}, tenant="t")
    await runner.wait(job.id, timeout=5)
    await runner.redis.zadd(ARQ_ABORT, {"stale-abort": 1})
    assert await prune_finished(runner.store, time.time() * 1000) == 0  # record still alive
    later = time.time() * 1000 + runner.settings.record_ttl_seconds * 1000 + 1000
    await runner.redis.delete(runner.keys.job(job.id))  # as the record TTL would
    assert await prune_finished(runner.store, later) == 1
    assert (await runner.list("t")).total == 0
    assert (await runner.list("t", status="succeeded")).total == 0
    assert (await runner.list("t", task="demo.echo")).total == 0
    assert await runner.redis.zscore(ARQ_ABORT, "stale-abort") is None
