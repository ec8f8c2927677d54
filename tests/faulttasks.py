"""Tasks for the fault tests (test_faults.py), loaded by worker processes through
``JOBRUNNER_TASKS=tests.faulttasks:TASKS``."""

from __future__ import annotations

import os

from pydantic import BaseModel, ConfigDict

from jobrunner.context import JobContext
from jobrunner.registry import task


class NoParams(BaseModel):
    model_config = ConfigDict(extra="forbid")


@task("tests.poison", timeout=30)
async def poison(ctx: JobContext, params: NoParams) -> None:
    """Kills the worker process that runs it, as a segfaulting extension would."""
    os._exit(1)


TASKS = [poison]
