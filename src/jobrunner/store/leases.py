"""arq's in-progress leases held by a worker: renewed by its heartbeat, and the abort set a
cancel writes (read when the wake channel says so, and now and then as a fallback)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from redis.asyncio import Redis

from jobrunner.store.keys import ARQ_ABORT, arq_in_progress
from jobrunner.store.scripts import lua_source

ABORT_WINDOW_MS = 60_000  # aborts older than this are done (the cleanup cron prunes them)


class Leases:
    def __init__(self, redis: Redis, worker_id: str) -> None:
        self.redis = redis
        self.worker_id = worker_id
        self._renew = redis.register_script(lua_source("renew"))

    async def renew(
        self, pipe: Any, running: Mapping[str, Sequence[str]], now_ms: float, lease_ms: int
    ) -> None:
        """Queue on ``pipe`` the renewal of every lease in ``running`` (queue -> job ids)."""
        pairs: list[str | int] = []
        for queue, job_ids in running.items():
            for job_id in job_ids:
                pairs += [queue, job_id]
        if pairs:
            args = [arq_in_progress(""), self.worker_id, int(now_ms), lease_ms, *pairs]
            await self._renew(keys=[], args=args, client=pipe)

    async def aborted(self, now_ms: float) -> set[str]:
        """Ids a cancel asked to stop within the abort window."""
        ids = await self.redis.zrangebyscore(ARQ_ABORT, now_ms - ABORT_WINDOW_MS, "+inf")
        return {bytes(i).decode() for i in ids}
