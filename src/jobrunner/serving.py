"""Whether anything will run a job: a warning when jobs land on a queue no live worker consumes."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

import structlog

from jobrunner.errors import RedisUnavailableError

log = structlog.get_logger("jobrunner.runtime")


class UnservedQueues:
    """Looks each queue up in the worker registry at most every ``every`` seconds, so that
    enqueueing stays one round trip, and logs a warning when no live worker consumes it."""

    def __init__(
        self,
        serves: Callable[[str], Awaitable[bool]],
        *,
        every: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._serves = serves
        self._every = every
        self._clock = clock
        self._checked: dict[str, float] = {}

    async def check(self, plan: str) -> None:
        now = self._clock()
        last = self._checked.get(plan)
        if last is not None and now - last < self._every:
            return
        self._checked[plan] = now
        try:
            served = await self._serves(plan)
        except RedisUnavailableError:
            return  # the enqueue itself succeeded; this is only advice
        if not served:
            log.warning("no live worker serves this queue; its jobs wait for one", queue=plan)
