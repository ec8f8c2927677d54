"""Does Redis answer? A bounded ping, and a probe that keeps asking so callers can fail fast.

The client's connection pool retries a command through a brief outage (see connection.py);
a request handler must not wait that long. ``RedisProbe`` pings in the background and tells,
without a round trip, whether the last ping got an answer in time.
"""

from __future__ import annotations

import asyncio
import contextlib

import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError

__all__ = ["READY_DEADLINE_SECONDS", "RedisProbe", "redis_answers"]

READY_DEADLINE_SECONDS = 1.0
log = structlog.get_logger("jobrunner.health")


async def redis_answers(redis: Redis, deadline: float = READY_DEADLINE_SECONDS) -> bool:
    """True when Redis answers a PING within ``deadline`` seconds."""
    try:
        async with asyncio.timeout(deadline):
            return bool(await redis.ping())
    except (RedisError, OSError, TimeoutError):
        return False


class RedisProbe:
    """Pings every ``interval`` seconds; ``available`` is the last verdict (True until then).

    A ping that misses its deadline is asked again at once before Redis is called silent: one
    late answer may be this process's own stall (a blocked event loop), not Redis's.
    """

    def __init__(
        self, redis: Redis, *, interval: float = 0.5, deadline: float = READY_DEADLINE_SECONDS
    ) -> None:
        self.redis = redis
        self.interval = interval
        self.deadline = deadline
        self.available = True
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def check(self) -> bool:
        """Ping now (one try) and remember the answer: what /readyz reports."""
        self._set(await redis_answers(self.redis, self.deadline))
        return self.available

    def _set(self, answered: bool) -> None:
        if answered != self.available:
            log.warning("redis answers again" if answered else "redis does not answer",
                        deadline=self.deadline)  # fmt: skip
        self.available = answered

    async def _watch(self) -> None:
        while not self._stop.is_set():
            answered = await redis_answers(self.redis, self.deadline)
            if not answered and self.available:
                answered = await redis_answers(self.redis, self.deadline)
            self._set(answered)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.interval):
                    await self._stop.wait()

    async def __aenter__(self) -> RedisProbe:
        self._stop.clear()
        self._task = asyncio.create_task(self._watch(), name="redis-probe")
        return self

    async def __aexit__(self, *exc: object) -> None:
        task, self._task = self._task, None
        if task is None:
            return
        # the flag ends the loop even if a client library swallows the cancellation
        self._stop.set()
        task.cancel()
        await asyncio.wait({task}, timeout=self.deadline * 2 + self.interval)
