"""The registry of live workers: one hash per worker with a TTL, refreshed by heartbeats.

A heartbeat also renews the arq leases of the worker's running jobs and adds the attempt
durations it observed since the last beat to the cluster-wide histogram, and the jobs it ended
to the per-minute figures, all in one round trip.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from redis.asyncio import Redis

from jobrunner.domain.durations import TaskDurations
from jobrunner.domain.minutes import MinuteFigures
from jobrunner.store.keys import Keys
from jobrunner.store.leases import Leases
from jobrunner.store.metrics import add_durations
from jobrunner.store.minutes import add_minutes


class WorkerRegistry:
    def __init__(self, redis: Redis, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys

    async def beat(
        self,
        worker_id: str,
        info: dict[str, Any],
        *,
        now_ms: float,
        ttl_seconds: float,
        running: Mapping[str, Sequence[str]],
        lease_ms: int,
        durations: Mapping[str, TaskDurations] | None = None,
        minutes: Mapping[int, MinuteFigures] | None = None,
    ) -> None:
        """Refresh this worker's entry, renew the arq leases of its ``running`` jobs (queue ->
        ids), add ``durations`` and ``minutes``."""
        key = self.keys.worker(worker_id)
        fields = {name: json.dumps(value) for name, value in info.items()}
        fields["last_seen_ms"] = repr(now_ms)
        # MULTI/EXEC: the duration increments land once or not at all (the caller keeps
        # them for the next beat when this raises), even when the client retries
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping=fields)
            pipe.pexpire(key, int(ttl_seconds * 1000))
            pipe.zadd(self.keys.workers, {worker_id: now_ms})
            await Leases(self.redis, worker_id).renew(pipe, running, now_ms, lease_ms)
            add_durations(pipe, self.keys, durations or {})
            add_minutes(pipe, self.keys, minutes or {})
            await pipe.execute()

    async def remove(
        self,
        worker_id: str,
        durations: Mapping[str, TaskDurations] | None = None,
        minutes: Mapping[int, MinuteFigures] | None = None,
    ) -> None:
        """Leave the registry, adding what was observed since the last beat."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(self.keys.worker(worker_id))
            pipe.zrem(self.keys.workers, worker_id)
            add_durations(pipe, self.keys, durations or {})
            add_minutes(pipe, self.keys, minutes or {})
            await pipe.execute()

    async def live(self) -> list[dict[str, Any]]:
        """Workers whose entry has not expired; stale ids are pruned from the set."""
        ids = [i.decode() for i in await self.redis.zrange(self.keys.workers, 0, -1)]
        async with self.redis.pipeline(transaction=False) as pipe:
            for worker_id in ids:
                pipe.hgetall(self.keys.worker(worker_id))
            raws = await pipe.execute()
        live: list[dict[str, Any]] = []
        stale: list[str] = []
        for worker_id, raw in zip(ids, raws, strict=True):
            if not raw:
                stale.append(worker_id)
                continue
            entry = {k.decode(): json.loads(v) for k, v in raw.items()}
            live.append({"id": worker_id, **entry})
        if stale:
            await self.redis.zrem(self.keys.workers, *stale)
        return live
