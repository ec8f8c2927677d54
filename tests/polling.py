"""Waiting for a condition in tests: poll with a deadline, never a bare sleep."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from jobrunner.domain.status import JobStatus
from jobrunner.runtime import JobRunner

T = TypeVar("T")


async def eventually(
    read: Callable[[], Awaitable[T]], ok: Callable[[T], bool], timeout: float = 5.0
) -> T:
    """Poll ``read`` until ``ok`` holds; the last value once ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    value = await read()
    while not ok(value) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
        value = await read()
    return value


async def wait_running(runner: JobRunner, job_id: str, timeout: float = 30) -> None:
    """Until the job's record says running (its events, not a poll)."""
    async with asyncio.timeout(timeout):
        async for event in runner.watch(job_id):
            if event.status is JobStatus.RUNNING:
                return
