"""Wakes the idle queue worker a message names (a job was enqueued on its queue), and the
process's abort check when a cancel of a running job is requested.

One pub/sub subscription per process. A lost message costs at most one idle poll interval
(or one abort-check interval), because both still poll as a fallback.
"""

from __future__ import annotations

import asyncio
import contextlib

import structlog
from redis.asyncio import Redis

log = structlog.get_logger("jobrunner.worker")


class WakeListener:
    def __init__(self, redis: Redis, channel: str) -> None:
        self.redis = redis
        self.channel = channel
        self._events: dict[str, asyncio.Event] = {}
        self.abort = asyncio.Event()  # set by the "abort" message (store/lua/request_cancel.lua)
        self._task: asyncio.Task[None] | None = None

    def event_for(self, queue: str) -> asyncio.Event:
        return self._events.setdefault(queue, asyncio.Event())

    def _wake(self, data: bytes | str) -> None:
        name = data.decode() if isinstance(data, bytes) else data
        event = self._events.get(name)
        if event is not None:
            event.set()
        elif name == "abort":
            self.abort.set()

    async def start(self) -> None:
        ready = asyncio.Event()
        self._task = asyncio.create_task(self._listen(ready))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(ready.wait(), 5)

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task

    async def _listen(self, ready: asyncio.Event) -> None:
        while True:
            pubsub = self.redis.pubsub()
            try:
                await pubsub.subscribe(self.channel)
                ready.set()
                while True:
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=5.0)
                    if message and message.get("type") == "message":
                        self._wake(message["data"])
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Redis blip: resubscribe; polling covers the gap
                log.warning("wake subscription lost", error=str(exc))
                for each in self._events.values():
                    each.set()
                self.abort.set()
                await asyncio.sleep(1.0)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
