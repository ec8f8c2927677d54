"""Jobs handed straight to this idle process: a submit that finds it registered idle starts the
job for it and pushes it to this process's hand-off list (store/lua/create_jobs.lua), and the
reader below, blocked on that list, runs it at once: no wake message, no claim round trip.

The queue stays the way every other job comes: the hand-off only saves an idle worker a hop.
Stopping, the process first leaves the idle sets (its queue loops' claims registered it), so
no submit picks it any more, then runs what was already handed to it like any claimed job.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterable

import structlog
from redis.asyncio import ConnectionPool, Redis
from redis.exceptions import RedisError

from jobrunner.store.keys import Keys
from jobrunner.store.pickup import Claimed, handed_job

log = structlog.get_logger("jobrunner.worker")

Dispatch = Callable[[str, Claimed], None]  # (queue, job): run the job on that queue's worker


class HandoffReader:
    def __init__(self, redis: Redis, keys: Keys, worker_id: str, dispatch: Dispatch) -> None:
        self.redis = redis  # the shared pool: the drain and the idle sets
        self.list = keys.handoff(worker_id)
        self.member_prefix = f"{worker_id}|"
        self._dispatch = dispatch
        # BLPOP holds its connection while it waits: a pool of its own, closed at stop
        pool = redis.connection_pool
        kwargs = dict(pool.connection_kwargs)
        # a BLPOP of 1 s must not look like a dead connection to the socket's own timeout
        kwargs["socket_timeout"] = max(float(kwargs.get("socket_timeout") or 5.0), 1.0) + 1.0
        self._blocking = Redis(
            connection_pool=ConnectionPool(connection_class=pool.connection_class, **kwargs)
        )
        self._task: asyncio.Task[None] | None = None
        self.handed = 0  # jobs received, for tests and stats

    def start(self) -> None:
        self._task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        while True:
            try:
                popped = await self._blocking.blpop([self.list], timeout=1)  # type: ignore[misc]
            except (RedisError, OSError) as exc:  # a Redis blip: the queue path still works
                log.warning("hand-off read failed", error=str(exc))
                await asyncio.sleep(1.0)
                continue
            if popped is not None:
                self._take(popped[1])

    def _take(self, raw: bytes) -> None:
        try:
            queue, job = handed_job(raw)
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            log.error("unreadable hand-off entry dropped", error=str(exc))
            return
        self.handed += 1
        try:
            self._dispatch(queue, job)
        except Exception:  # the reader must live on: the job's lease lapses and it runs again
            log.exception("handed job not started", job_id=job.job_id)

    async def stop(self, idle_sets: Iterable[str]) -> None:
        """Leave the idle sets, stop reading, then run what was handed over meanwhile."""
        sets = list(idle_sets)
        with contextlib.suppress(RedisError, OSError):
            async with self.redis.pipeline(transaction=False) as pipe:
                for key in sets:
                    pipe.zrangebyscore(key, "-inf", "+inf")
                members = await pipe.execute()
            mine = [
                (key, m)
                for key, found in zip(sets, members, strict=True)
                for m in found
                if bytes(m).decode().startswith(self.member_prefix)
            ]
            if mine:
                async with self.redis.pipeline(transaction=False) as pipe:
                    for key, member in mine:
                        pipe.zrem(key, member)
                    await pipe.execute()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self._blocking.aclose()
        with contextlib.suppress(RedisError, OSError):
            while (raw := await self.redis.lpop(self.list)) is not None:  # type: ignore[misc]
                self._take(raw)
