"""Diagnostic tasks used by the tests, the README walkthrough and the benchmarks."""

from __future__ import annotations

import asyncio
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from jobrunner.context import JobContext
from jobrunner.errors import PermanentError, TransientError
from jobrunner.registry import Task, task


class EchoParams(BaseModel):
    """Any fields at all: echo returns what it was given (the one task that takes any)."""

    model_config = ConfigDict(extra="allow")


class SleepParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    seconds: float = Field(default=1.0, ge=0, le=3600)
    steps: int = Field(default=10, ge=1, le=10_000)


class FlakyParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    fail_times: int = Field(default=1, ge=-1, le=100, description="-1 fails permanently")


@task("demo.echo", timeout=30)
async def echo(ctx: JobContext, params: EchoParams) -> dict[str, Any]:
    """Return the params unchanged."""
    return params.model_dump()


@task("demo.sleep", max_timeout=3700)
async def sleep(ctx: JobContext, params: SleepParams) -> dict[str, Any]:
    """Sleep in steps, reporting progress at each; cancellation stops it between steps."""
    step = params.seconds / params.steps
    try:
        for done in range(1, params.steps + 1):
            await asyncio.sleep(step)
            await ctx.progress(100 * done / params.steps, f"step {done}/{params.steps}")
    finally:
        ctx.log.info("demo.sleep finished or stopped", cancelled=ctx.cancelled)
    return {"slept": params.seconds, "steps": params.steps}


@task("demo.flaky", timeout=30)
async def flaky(ctx: JobContext, params: FlakyParams) -> dict[str, Any]:
    """Fail transiently on the first ``fail_times`` attempts, then succeed; -1 never succeeds."""
    if params.fail_times == -1:
        raise PermanentError("demo.flaky was told to fail permanently", code="flaky_permanent")
    if ctx.attempt <= params.fail_times:
        raise TransientError(
            f"attempt {ctx.attempt} of {params.fail_times} planned failures", code="flaky_transient"
        )
    return {"attempt": ctx.attempt}


DEMO_TASKS: tuple[Task[Any], ...] = (echo, sleep, flaky)
