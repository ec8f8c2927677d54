"""The concurrency one worker process shares between its queue workers."""

from __future__ import annotations

import asyncio

from jobrunner.domain.capacity import free_slots


class SharedCapacity:
    """Tracks jobs in use and backlogs per queue; a freed slot wakes only the queues that
    want one (a backlog, or no free slot at their last poll)."""

    def __init__(self, total: int, guaranteed: dict[str, int]) -> None:
        self.total = total
        self.guaranteed = dict(guaranteed)
        self.in_use = dict.fromkeys(guaranteed, 0)
        self.backlogged = dict.fromkeys(guaranteed, False)
        self.starved = dict.fromkeys(guaranteed, False)
        self._wakers: dict[str, asyncio.Event] = {}

    def add_waker(self, queue: str, event: asyncio.Event) -> None:
        self._wakers[queue] = event

    def free_for(self, queue: str) -> int:
        return free_slots(
            queue,
            total=self.total,
            guaranteed=self.guaranteed,
            in_use=self.in_use,
            backlogged=self.backlogged,
        )

    def waiting(self, queue: str, starved: bool) -> None:
        """Whether ``queue`` found no free slot at its last poll."""
        self.starved[queue] = starved

    def started(self, queue: str, count: int, *, more_waiting: bool) -> None:
        self.in_use[queue] += count
        self.backlogged[queue] = more_waiting

    def finished(self, queue: str) -> None:
        self.in_use[queue] -= 1
        for name, event in self._wakers.items():
            if self.backlogged[name] or self.starved[name]:
                event.set()
