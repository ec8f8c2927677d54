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
