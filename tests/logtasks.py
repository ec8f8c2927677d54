"""A task that fails the unexpected way, for tests of what the logs say (test_logs.py)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from jobrunner.context import JobContext
from jobrunner.registry import task


class NoParams(BaseModel):
    model_config = ConfigDict(extra="forbid")


@task("tests.divide_by_zero", timeout=10)
async def divide_by_zero(ctx: JobContext, params: NoParams) -> float:
    """A bug: an exception no one meant to raise."""
    return 1 / 0


TASKS = [divide_by_zero]
