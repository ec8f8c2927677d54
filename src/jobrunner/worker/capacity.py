"""The concurrency one worker process shares between its queue workers."""

from __future__ import annotations

import asyncio

from jobrunner.domain.capacity import free_slots


class SharedCapacity:
    """Tracks jobs in use and backlogs per queue; wakes every queue when a slot frees up."""

    def __init__(self, total: int, guaranteed: dict[str, int]) -> None:
        self.total = total
        self.guaranteed = dict(guaranteed)
        self.in_use = dict.fromkeys(guaranteed, 0)
        self.backlogged = dict.fromkeys(guaranteed, False)
        self._wakers: list[asyncio.Event] = []

    def add_waker(self, event: asyncio.Event) -> None:
        self._wakers.append(event)

    def free_for(self, queue: str) -> int:
        return free_slots(
            queue,
            total=self.total,
            guaranteed=self.guaranteed,
            in_use=self.in_use,
            backlogged=self.backlogged,
        )

    def started(self, queue: str, count: int, *, more_waiting: bool) -> None:
        self.in_use[queue] += count
        self.backlogged[queue] = more_waiting

    def finished(self, queue: str) -> None:
        self.in_use[queue] -= 1
        for event in self._wakers:  # any queue may now have room
            event.set()
