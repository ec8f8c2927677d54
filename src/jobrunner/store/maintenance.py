"""Housekeeping over the indices: expire overdue waiting jobs, prune what records outlived."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from jobrunner.domain.models import AuditEntry, JobRecord
from jobrunner.domain.status import JobStatus
from jobrunner.store.jobs import JobStore, Transition
from jobrunner.store.keys import ALL_TENANTS, ARQ_ABORT

ABORT_KEEP_MS = 60_000


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
            fields={"finished_at": now_ms},
            audit=AuditEntry(at=datetime.now(tz=UTC), event="expired", status=JobStatus.EXPIRED),
        )
        if await store.transition(job_id, change, now_ms):
            expired += 1
            if on_expired is not None:
                await on_expired(await store.get(job_id))
        await store.redis.zrem(store.keys.expiring, job_id)
    return expired


async def prune_finished(store: JobStore, now_ms: float, batch: int = 1000) -> int:
    """Drop index entries of jobs whose records have expired (record TTL after finishing)."""
    cutoff = now_ms - store.record_ttl * 1000
    members = await store.redis.zrangebyscore(
        store.keys.finished, "-inf", cutoff, start=0, num=batch
    )
    k = store.keys
    async with store.redis.pipeline(transaction=False) as pipe:
        for member in members:
            # 'tenant<TAB>task<TAB>status<TAB>id<TAB>plan' (no plan: written before plan indices)
            tenant, task, status, job_id, *plan = member.decode().split("\t")
            for owner in (tenant, ALL_TENANTS):
                pipe.zrem(k.tenant_index(owner), job_id)
                pipe.zrem(k.status_index(owner, status), job_id)
                pipe.zrem(k.task_index(owner, task), job_id)
            if plan:
                pipe.zrem(k.plan_index(plan[0]), job_id)
            pipe.zrem(k.finished, member)
        # arq never prunes its abort set (arq issue #485); aborts older than a minute are done
        pipe.zremrangebyscore(ARQ_ABORT, "-inf", now_ms - ABORT_KEEP_MS)
        await pipe.execute()
    return len(members)
