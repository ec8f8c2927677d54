"""Whether anything will run a job: a warning when jobs land on a queue no live worker consumes,
or on one whose live workers all lack the job's task (the job would fail, task_not_registered)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import structlog

from jobrunner.domain.task_routing import Coverage, coverage
from jobrunner.errors import RedisUnavailableError

log = structlog.get_logger("jobrunner.runtime")

LiveWorkers = Callable[[], Awaitable[Sequence[Mapping[str, Any]]]]


class UnservedQueues:
    """Looks each queue and task up in the worker registry at most every ``every`` seconds, so
    that enqueueing stays one round trip, and logs a warning when no live worker can run it."""

    def __init__(
        self,
        live: LiveWorkers,
        *,
        every: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._live = live
        self._every = every
        self._clock = clock
        self._checked: dict[tuple[str, str], float] = {}

    async def check(self, plan: str, task: str) -> None:
        now = self._clock()
        last = self._checked.get((plan, task))
        if last is not None and now - last < self._every:
            return
        self._checked[(plan, task)] = now
        try:
            found = coverage(await self._live(), plan, task)
        except RedisUnavailableError:
            return  # the enqueue itself succeeded; this is only advice
        if found is Coverage.NO_WORKER:
            log.warning("no live worker serves this queue; its jobs wait for one", queue=plan)
        elif found is Coverage.NO_TASK:
            log.warning(
                "no live worker on this queue has the task; its jobs fail (task_not_registered)",
                queue=plan,
                task=task,
            )
