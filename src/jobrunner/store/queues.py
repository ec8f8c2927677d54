"""Per-plan queue statistics: waiting, running, deferred jobs and the workers serving each.

The one function that knows how jobs sit in arq's queue zsets: a job stays in its queue's zset
while it runs (removed when the attempt ends), its score moved to its lease's expiry (in the
future) when a worker claims it; a job deferred to later, or waiting out a retry's backoff, has
a score in the future too, and a due job one at or before now. Running counts come from the
workers' heartbeats, as Sidekiq's busy count does, so no job is looked at one by one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from jobrunner.store.keys import Keys


@dataclass(frozen=True)
class QueueStats:
    name: str  # the arq queue (zset) key
    plan: str
    queued: int  # due and waiting for a worker
    running: int  # being run, as of each live worker's last heartbeat
    deferred: int  # scheduled for later, or a retry waiting out its backoff
    workers: int  # live workers consuming this queue


async def queue_stats(
    redis: Redis,
    keys: Keys,
    plans: Sequence[str],
    workers: Sequence[Mapping[str, Any]],
    now_ms: float,
) -> list[QueueStats]:
    """One round trip for every plan's counts; ``workers`` are the live registry entries."""
    async with redis.pipeline(transaction=False) as pipe:
        for plan in plans:
            pipe.zcount(keys.queue(plan), "-inf", now_ms)
            pipe.zcount(keys.queue(plan), f"({now_ms}", "+inf")
        counts = await pipe.execute()
    stats: list[QueueStats] = []
    for i, plan in enumerate(plans):
        due, deferred = int(counts[2 * i]), int(counts[2 * i + 1])
        running = sum(int(w.get("running_by_queue", {}).get(plan, 0)) for w in workers)
        serving = sum(1 for w in workers if plan in w.get("queues", ()))
        stats.append(
            QueueStats(
                name=keys.queue(plan),
                plan=plan,
                queued=due,
                running=running,
                # running jobs sit among the future entries until their lease lapses; a
                # heartbeat's lag can make the difference briefly negative
                deferred=max(deferred - running, 0),
                workers=serving,
            )
        )
    return stats


@dataclass(frozen=True)
class QueueSpot:
    """Where one job sits in its arq queue: how many entries come before it (due jobs, and
    deferred ones due earlier) and when it becomes due."""

    ahead: int
    due_ms: float


async def queue_spot(redis: Redis, queue: str, job_id: str) -> QueueSpot | None:
    """The job's place in ``queue`` (the arq zset key), or None when it is not in it."""
    async with redis.pipeline(transaction=False) as pipe:
        pipe.zrank(queue, job_id)
        pipe.zscore(queue, job_id)
        rank, score = await pipe.execute()
    if rank is None or score is None:
        return None
    return QueueSpot(ahead=int(rank), due_ms=float(score))
