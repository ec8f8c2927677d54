"""A JobContext for calling task helpers without a worker (progress kept in a list)."""

from __future__ import annotations

import asyncio

from jobrunner.context import JobContext


def job_context(reported: list[float] | None = None, timeout: float | None = 60.0) -> JobContext:
    async def sink(percent: float, message: str | None) -> None:
        if reported is not None:
            reported.append(percent)

    return JobContext(
        job_id="job-1",
        attempt=1,
        tenant="t",
        correlation_id=None,
        task="pipeline",
        blobs=None,  # type: ignore[arg-type]  # not used by these helpers
        log=None,
        _sink=sink,
        _loop=asyncio.get_running_loop(),
        timeout_seconds=timeout,
    )
