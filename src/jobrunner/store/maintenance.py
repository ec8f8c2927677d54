"""Waiting jobs whose TTL passed become ``expired``, page after page until none is overdue
(the pruning of finished jobs is in cleanup.py)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from jobrunner.domain.models import AuditEntry, JobRecord
from jobrunner.domain.status import JobStatus
from jobrunner.errors import JobNotFoundError
from jobrunner.store.jobs import JobStore, Transition


async def expire_overdue(
    store: JobStore,
    now_ms: float,
    batch: int = 500,
    on_expired: Callable[[JobRecord], Awaitable[None]] | None = None,
) -> int:
    """Jobs whose TTL passed before they started become ``expired``; returns how many.

    Pages of ``batch`` until none is overdue. ``on_expired`` gets each expired record (its
    webhook is scheduled there)."""
    expired = 0
    while True:
        due = await store.redis.zrangebyscore(
            store.keys.expiring, "-inf", now_ms, start=0, num=batch
        )
        for raw in due:
            job_id = raw.decode()
            if await _expire(store, job_id, now_ms):
                expired += 1
                if on_expired is not None:
                    await on_expired(await store.get(job_id))
        if len(due) < batch:
            return expired


async def _expire(store: JobStore, job_id: str, now_ms: float) -> bool:
    change = Transition(
        target=JobStatus.EXPIRED,
        fields={"finished_at": now_ms},
        audit=AuditEntry(at=datetime.now(tz=UTC), event="expired", status=JobStatus.EXPIRED),
    )
    try:
        moved = await store.transition(job_id, change, now_ms)
    except JobNotFoundError:  # the record is gone: nothing to expire, only the entry to drop
        moved = False
    await store.redis.zrem(store.keys.expiring, job_id)
    return moved
