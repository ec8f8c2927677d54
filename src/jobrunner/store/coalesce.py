"""Coalescing: calls made in one event-loop iteration go out together as one batch.

``await coalescer.call(item)`` parks the caller; once the loop has run every callback that was
ready, the items gathered so far are handed to ``send`` at once (one pipeline, one round trip),
and each caller gets its own reply or its own error back. Nothing waits on a timer: a lone call
leaves in the next loop iteration (the batch's first call schedules its send task, whose first
step closes the batch and sends it), so coalescing costs an idle caller nothing measurable. A
batch whose callers have all given up is called off.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

# Sends a batch; returns one reply or exception per item, in order. Raising fails every item.
Send = Callable[[Sequence[T]], Awaitable[Sequence[R | Exception]]]


@dataclass(eq=False)
class _Batch(Generic[T, R]):
    """The calls gathered for one send, and how many of their callers still wait."""

    items: list[T] = field(default_factory=list)
    futures: list[asyncio.Future[R]] = field(default_factory=list)
    waiting: int = 0
    task: asyncio.Task[None] | None = None

    def abandon(self) -> None:
        """A caller gave up (its deadline): once none waits, the send is called off, as
        cancelling a lone call would, so no write keeps going unawaited."""
        self.waiting -= 1
        if self.waiting == 0 and self.task is not None:
            self.task.cancel()


class Coalescer(Generic[T, R]):
    """Batches concurrent ``call``s into one ``send`` per loop iteration (at most ``limit``)."""

    def __init__(self, send: Send[T, R], *, limit: int = 500) -> None:
        self._send = send
        self._limit = limit
        self._open: _Batch[T, R] = _Batch()
        self._sending: set[asyncio.Task[None]] = set()

    async def call(self, item: T) -> R:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        batch = self._open
        batch.items.append(item)
        batch.futures.append(future)
        batch.waiting += 1
        if batch.task is None:
            # its first step runs once the callbacks ready now have run: their calls join
            batch.task = loop.create_task(self._deliver(batch))
            self._sending.add(batch.task)
            batch.task.add_done_callback(self._sending.discard)
        if len(batch.items) >= self._limit:
            self._close(batch)
        try:
            return await future
        except asyncio.CancelledError:
            batch.abandon()
            if batch.waiting == 0:  # called off: later calls start a batch of their own
                self._close(batch)
            raise

    def _close(self, batch: _Batch[T, R]) -> None:
        """No more calls join ``batch``."""
        if self._open is batch:
            self._open = _Batch()

    async def _deliver(self, batch: _Batch[T, R]) -> None:
        self._close(batch)
        futures = batch.futures
        if all(future.done() for future in futures):  # every caller gave up before it left
            return
        try:
            replies = await self._send(batch.items)
            if len(replies) != len(futures):
                raise RuntimeError(f"{len(replies)} replies to a batch of {len(futures)}")
        except asyncio.CancelledError:
            for future in futures:
                future.cancel()
            raise
        except Exception as exc:  # the whole batch failed: every caller hears why
            replies = [exc] * len(futures)
        for future, reply in zip(futures, replies, strict=True):
            if future.done():  # its caller gave up (a deadline) meanwhile
                continue
            if isinstance(reply, Exception):
                future.set_exception(reply)
            else:
                future.set_result(reply)

    async def aclose(self) -> None:
        """Wait for the batches already sent (their callers may still be waiting)."""
        if self._sending:
            await asyncio.gather(*self._sending, return_exceptions=True)
