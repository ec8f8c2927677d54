"""Server-Sent Events for the live pages: named events whose data is HTML or JSON, and a
source merged with a clock so a page hears something (a refresh or a comment) while quiet."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator
from typing import TypeVar

from starlette.responses import StreamingResponse

from jobrunner.dashboard.render import SECURITY_HEADERS

__all__ = ["TICK", "event", "stream_response", "ticking"]

T = TypeVar("T")
TICK = object()  # what ``ticking`` yields when the source was quiet for a whole interval
_END = object()


def event(name: str, data: str) -> str:
    """One SSE message; every line of ``data`` gets its own ``data:`` field."""
    lines = "".join(f"data: {line}\n" for line in (data.splitlines() or [""]))
    return f"event: {name}\n{lines}\n"


def stream_response(body: AsyncIterator[str]) -> StreamingResponse:
    return StreamingResponse(
        body,
        media_type="text/event-stream",
        headers={**SECURITY_HEADERS, "X-Accel-Buffering": "no"},
    )


async def _pump(source: AsyncIterator[T], queue: asyncio.Queue[object]) -> None:
    try:
        async for item in source:
            await queue.put(item)
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # handed to the reader, which re-raises it
        await queue.put(exc)
    finally:
        await queue.put(_END)


async def ticking(source: AsyncIterator[T], every: float) -> AsyncGenerator[T | object, None]:
    """The items of ``source`` as they come, and ``TICK`` after each quiet ``every`` seconds.
    ``source`` runs in its own task, so a tick never interrupts it."""
    queue: asyncio.Queue[object] = asyncio.Queue()
    pump = asyncio.create_task(_pump(source, queue))
    try:
        while True:
            try:
                item = await asyncio.wait_for(queue.get(), every)
            except TimeoutError:
                yield TICK
                continue
            if item is _END:
                return
            if isinstance(item, Exception):
                raise item
            yield item
    finally:
        pump.cancel()
        await asyncio.gather(pump, return_exceptions=True)
