"""Tasks that only some workers have, for tests of how jobs find a worker that has their task
(test_task_routing.py); a worker process loads them with JOBRUNNER_TASKS=tests.routedtasks:TASKS."""

from __future__ import annotations

import asyncio

from pydantic import BaseModel, ConfigDict

from jobrunner.context import JobContext
from jobrunner.registry import task


class Echo(BaseModel):
    model_config = ConfigDict(extra="forbid")
    value: str = "routed"


class Hold(BaseModel):
    model_config = ConfigDict(extra="forbid")
    seconds: float


@task("tests.routed_echo", timeout=10)
async def routed_echo(ctx: JobContext, params: Echo) -> dict[str, str]:
    return {"value": params.value, "task": ctx.task}


@task("tests.routed_hold", timeout=30)
async def routed_hold(ctx: JobContext, params: Hold) -> None:
    """Keeps one slot of the worker that has it busy for ``seconds``."""
    await asyncio.sleep(params.seconds)


TASKS = [routed_echo, routed_hold]
