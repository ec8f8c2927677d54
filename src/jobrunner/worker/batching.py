"""Attempts that end close together are written together: one finish call per batch.

An ending waits at most for the loop's current tick (and for a write already in flight, so at
most one finish call per process is in flight); under load the batch grows on its own.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence

from jobrunner.store.finishes import Ended, Ending

WriteBatch = Callable[[Sequence[Ending], float], Awaitable[list[Ended]]]


class FinishBatcher:
    def __init__(self, write: WriteBatch, *, max_batch: int = 500) -> None:
        self._write = write
        self._max = max_batch
        self._pending: list[tuple[Ending, asyncio.Future[Ended]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def end(self, ending: Ending) -> Ended:
        """Write ``ending`` with whatever else ends now; cancelling the caller does not stop
        the write."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[Ended] = loop.create_future()
        self._pending.append((ending, done))
        if self._flusher is None:
            self._flusher = loop.create_task(self._flush())
        return await asyncio.shield(done)

    async def _flush(self) -> None:
        try:
            await asyncio.sleep(0)  # endings of this tick join the batch
            while self._pending:
                batch, self._pending = self._pending[: self._max], self._pending[self._max :]
                await self._write_batch(batch)
        finally:
            self._flusher = None

    async def _write_batch(self, batch: list[tuple[Ending, asyncio.Future[Ended]]]) -> None:
        try:
            replies = await self._write([e for e, _ in batch], time.time() * 1000)
        except Exception as exc:  # each caller hears of it
            for _, done in batch:
                if not done.done():
                    done.set_exception(exc)
            return
        except asyncio.CancelledError:  # the loop is closing: nobody waits for these
            for _, done in batch + self._pending:
                done.cancel()
            raise
        for (_, done), reply in zip(batch, replies, strict=True):
            if not done.done():
                done.set_result(reply)
