"""The callbacks outbox: jobs with a callback_url that ended, until their delivery job exists.

The record scripts add a job here in the same call that makes it terminal (lib_record.lua's
``seal``), so a process that dies between that write and enqueuing the webhook delivery loses
nothing: the reconcile cron finds the entry and enqueues the delivery then (under the same
idempotency key, so a delivery already made is not made twice).
"""

from __future__ import annotations

from redis.asyncio import Redis

from jobrunner.store.keys import Keys


class CallbackOutbox:
    def __init__(self, redis: Redis, keys: Keys) -> None:
        self.redis = redis
        self.key = keys.callbacks_due

    async def due(self, ended_before_ms: float, limit: int) -> list[str]:
        """Jobs that ended before ``ended_before_ms`` and still wait for their delivery job."""
        ids = await self.redis.zrangebyscore(self.key, "-inf", ended_before_ms, 0, limit)
        return [bytes(i).decode() for i in ids]

    async def done(self, job_id: str) -> None:
        """The delivery job exists (or never will: no callback, no webhook task)."""
        await self.redis.zrem(self.key, job_id)
