"""What a running task receives: its identity, a bound logger, progress and cancellation."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import structlog

from jobrunner.settings import Settings
from jobrunner.store.blobs import BlobStore
from jobrunner.store.jobs import JobStore

ProgressSink = Callable[[float, str | None], Awaitable[None]]


@dataclass
class JobContext:
    """Passed to every task run as its first argument.

    CPU-heavy work belongs in a thread (``await asyncio.to_thread(fn, ...)``) or a process
    pool; such code can poll ``cancel_token.is_set()`` (set when the job is cancelled, times
    out or the worker shuts down) to stop early, and report progress with
    ``progress_threadsafe`` since it is not on the event loop.
    """

    job_id: str
    attempt: int
    tenant: str
    correlation_id: str | None
    task: str
    blobs: BlobStore
    log: Any
    _sink: ProgressSink
    settings: Settings | None = None
    cancel_token: threading.Event = field(default_factory=threading.Event)
    timeout_seconds: float | None = None  # this attempt's timeout (caps CPU time in children)
    _loop: asyncio.AbstractEventLoop | None = None
    # the job store, for system tasks that act on another job's record (webhook delivery)
    store: JobStore | None = None

    async def progress(self, percent: float, message: str | None = None) -> None:
        """Report progress (0-100). Cheap: writes are throttled, the latest value always wins."""
        await self._sink(min(max(float(percent), 0.0), 100.0), message)

    def progress_threadsafe(self, percent: float, message: str | None = None) -> None:
        """``progress`` for code running in a worker thread."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        coro = self.progress(percent, message)
        asyncio.run_coroutine_threadsafe(coro, loop)

    @property
    def cancelled(self) -> bool:
        return self.cancel_token.is_set()


class ProgressThrottle:
    """Decides which progress updates reach Redis: at most one per interval, plus milestones."""

    def __init__(self, interval: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = interval
        self.clock = clock
        self._last_write = float("-inf")
        self._last_milestone = 0
        self.pending: tuple[float, str | None] | None = None

    def offer(self, percent: float, message: str | None) -> tuple[bool, int | None]:
        """(write now?, milestone crossed: 25/50/75/100 or None)."""
        milestone = int(percent // 25) * 25
        crossed = milestone if milestone > self._last_milestone else None
        if crossed is not None:
            self._last_milestone = milestone
        now = self.clock()
        if crossed is not None or now - self._last_write >= self.interval:
            self._last_write = now
            self.pending = None
            return True, crossed
        self.pending = (percent, message)
        return False, None


class _JobLogger:
    """``ctx.log``: a structlog logger bound to the job, bound on first use (binding costs
    more than many tasks spend, and most never log)."""

    __slots__ = ("_bound", "_values")

    def __init__(self, **values: Any) -> None:
        self._values = values
        self._bound: Any = None

    def __getattr__(self, name: str) -> Any:
        if self._bound is None:
            self._bound = structlog.get_logger("jobrunner.task").bind(**self._values)
        return getattr(self._bound, name)


def bind_job_logger(job_id: str, tenant: str, correlation_id: str | None, task: str) -> Any:
    return _JobLogger(job_id=job_id, tenant=tenant, correlation_id=correlation_id, task=task)
