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
    """Pings every ``interval`` seconds; ``available`` is the last answer (True until then)."""

    def __init__(
        self, redis: Redis, *, interval: float = 0.5, deadline: float = READY_DEADLINE_SECONDS
    ) -> None:
        self.redis = redis
        self.interval = interval
        self.deadline = deadline
        self.available = True
        self._task: asyncio.Task[None] | None = None

    async def check(self) -> bool:
        """Ping now, and remember the answer."""
        answered = await redis_answers(self.redis, self.deadline)
        if answered != self.available:
            log.warning("redis answers again" if answered else "redis does not answer",
                        deadline=self.deadline)  # fmt: skip
        self.available = answered
        return answered

    async def _run(self) -> None:
        while True:
            await self.check()
            await asyncio.sleep(self.interval)

    async def __aenter__(self) -> RedisProbe:
        self._task = asyncio.create_task(self._run(), name="redis-probe")
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
