"""Cron maintenance: overdue waiting jobs expire, index entries of purged records go away."""

from __future__ import annotations

import time

from jobrunner.domain.status import JobStatus
from jobrunner.runtime import JobRunner
from jobrunner.store.maintenance import expire_overdue


async def test_expire_overdue_marks_waiting_jobs_past_their_ttl(runner: JobRunner) -> None:
    due = await runner.enqueue("demo.echo", {}, ttl_seconds=0.05)
    fresh = await runner.enqueue("demo.echo", {}, ttl_seconds=3600)
    assert await expire_overdue(runner.store, time.time() * 1000 + 100) == 1
    assert (await runner.get(due.id)).status is JobStatus.EXPIRED
    assert (await runner.get(fresh.id)).status is JobStatus.QUEUED
    assert (await runner.list(status="expired")).total == 1


async def test_expiry_pages_until_done_and_survives_a_missing_record(runner: JobRunner) -> None:
    jobs = [await runner.enqueue("demo.echo", {}, ttl_seconds=0.05) for _ in range(5)]
    await runner.redis.delete(runner.keys.job(jobs[0].id))  # its record is gone
    assert await expire_overdue(runner.store, time.time() * 1000 + 100, batch=2) == 4
    assert await runner.redis.zcard(runner.keys.expiring) == 0
    assert (await runner.list(status="expired")).total == 4
