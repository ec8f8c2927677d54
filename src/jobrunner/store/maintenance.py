"""Waiting jobs whose TTL passed become ``expired`` (the pruning of finished jobs is in
cleanup.py)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from jobrunner.domain.models import AuditEntry, JobRecord
from jobrunner.domain.status import JobStatus
from jobrunner.store.jobs import JobStore, Transition


async def expire_overdue(
    store: JobStore,
    now_ms: float,
    batch: int = 500,
    on_expired: Callable[[JobRecord], Awaitable[None]] | None = None,
) -> int:
    """Jobs whose TTL passed before they started become ``expired``; returns how many.

    ``on_expired`` gets each expired record (its webhook is scheduled there)."""
    due = await store.redis.zrangebyscore(store.keys.expiring, "-inf", now_ms, start=0, num=batch)
    expired = 0
    for raw in due:
        job_id = raw.decode()
        change = Transition(
            target=JobStatus.EXPIRED,
            allowed_from=frozenset({JobStatus.QUEUED}),
            fields={"finished_at": now_ms},
            audit=AuditEntry(at=datetime.now(tz=UTC), event="expired", status=JobStatus.EXPIRED),
        )
        record = await store.transition(job_id, change, now_ms)
        if record is not None:
            expired += 1
            if on_expired is not None:
                await on_expired(record)
        await store.redis.zrem(store.keys.expiring, job_id)
    return expired
