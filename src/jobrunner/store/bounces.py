"""Bounces: a worker without a job's task puts the job back on its queue for one that has it.

A bounce is counted (to bound them) and noted in the job's audit trail; it costs no try (a job
of ours counts its tries in its record, which a bounce leaves as it was).
"""

from __future__ import annotations

from redis.asyncio import Redis

from jobrunner.store.keys import Keys, arq_in_progress

COUNTER_TTL_SECONDS = 7 * 24 * 3600


class TaskBounces:
    def __init__(self, redis: Redis, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys

    async def count(self, job_id: str) -> int:
        """How many times the job was bounced so far."""
        raw = await self.redis.get(self.keys.task_bounces(job_id))
        return int(raw) if raw is not None else 0

    async def bounce(self, job_id: str, entry: str, *, queue: str, due_ms: int) -> int:
        """Count one bounce, note ``entry`` (audit JSON) in the trail and put the job back on
        ``queue``, due at ``due_ms``, releasing its lease; the new count."""
        key = self.keys.task_bounces(job_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.incr(key)
            pipe.expire(key, COUNTER_TTL_SECONDS)
            pipe.rpushx(self.keys.audit(job_id), entry)
            pipe.zadd(queue, {job_id: due_ms}, xx=True)
            pipe.delete(arq_in_progress(job_id))
            count, *_ = await pipe.execute()
        return int(count)
