"""Coalescing: calls made in one event-loop iteration go out together as one batch.

``await coalescer.call(item)`` parks the caller; once the loop has run every callback that was
ready, the items gathered so far are handed to ``send`` at once (one pipeline, one round trip),
and each caller gets its own reply or its own error back. Nothing waits on a timer: a lone call
leaves in the next loop iteration, so coalescing costs an idle caller nothing measurable. A
batch whose callers have all given up is called off.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

# Sends a batch; returns one reply or exception per item, in order. Raising fails every item.
Send = Callable[[Sequence[T]], Awaitable[Sequence[R | Exception]]]


class Coalescer(Generic[T, R]):
    """Batches concurrent ``call``s into one ``send`` per loop iteration (at most ``limit``)."""

    def __init__(self, send: Send[T, R], *, limit: int = 500) -> None:
        self._send = send
        self._limit = limit
        self._waiting: list[tuple[T, asyncio.Future[R]]] = []
        self._sending: set[asyncio.Task[None]] = set()
        self._scheduled = False

    async def call(self, item: T) -> R:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        self._waiting.append((item, future))
        if len(self._waiting) >= self._limit:
            self._flush()
        elif not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._flush)
        return await future

    def _flush(self) -> None:
        self._scheduled = False
        batch, self._waiting = self._waiting, []
        if not batch:
            return
        task = asyncio.get_running_loop().create_task(self._deliver(batch))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)
        _call_off_when_abandoned(task, [future for _, future in batch])

    async def _deliver(self, batch: list[tuple[T, asyncio.Future[R]]]) -> None:
        futures = [future for _, future in batch]
        try:
            replies = await self._send([item for item, _ in batch])
            if len(replies) != len(batch):
                raise RuntimeError(f"{len(replies)} replies to a batch of {len(batch)}")
        except asyncio.CancelledError:
            for future in futures:
                future.cancel()
            raise
        except Exception as exc:  # the whole batch failed: every caller hears why
            replies = [exc] * len(batch)
        for future, reply in zip(futures, replies, strict=True):
            if future.done():  # its caller gave up (a deadline) meanwhile
                continue
            if isinstance(reply, Exception):
                future.set_exception(reply)
            else:
                future.set_result(reply)

    async def aclose(self) -> None:
        """Wait for the batches already sent (their callers may still be waiting)."""
        self._flush()
        if self._sending:
            await asyncio.gather(*self._sending, return_exceptions=True)


def _call_off_when_abandoned(task: asyncio.Task[None], futures: list[asyncio.Future[R]]) -> None:
    """Cancel the send once every caller of its batch has given up (each caller's deadline
    cancels its wait), as cancelling a lone call would: no write keeps going unawaited."""
    left = len(futures)

    def gone(future: asyncio.Future[R]) -> None:
        nonlocal left
        if future.cancelled():
            left -= 1
            if left == 0:
                task.cancel()

    for future in futures:
        future.add_done_callback(gone)
