"""Tasks' shared resources are closed once when the worker stops, even if one closer fails."""

from __future__ import annotations

import pytest

from jobrunner.registry import Registry
from jobrunner.runtime import JobRunner
from jobrunner.settings import Settings
from jobrunner.tasks.catalog import build_registry
from jobrunner.worker.runner import WorkerRunner


async def test_every_closer_runs_once_even_after_a_failure() -> None:
    calls: list[str] = []

    async def failing() -> None:
        calls.append("failing")
        raise RuntimeError("pool would not stop")

    async def fine() -> None:
        calls.append("fine")

    registry = Registry([], [failing])
    registry.on_close(fine)
    with pytest.raises(RuntimeError, match="pool would not stop"):
        await registry.close()
    await registry.close()  # a second close has nothing left to do
    assert calls == ["failing", "fine"]


async def test_merged_registry_keeps_the_closers() -> None:
    closed: list[bool] = []

    async def closer() -> None:
        closed.append(True)

    await Registry([], [closer]).merged([]).close()
    assert closed == [True]


async def test_worker_stop_closes_the_tasks_resources(
    settings: Settings, runner: JobRunner
) -> None:
    closed: list[bool] = []

    async def closer() -> None:
        closed.append(True)

    registry = build_registry(settings)
    registry.on_close(closer)
    worker = WorkerRunner(settings, registry, redis=runner.redis)
    await worker.start()
    assert closed == []
    await worker.stop(grace=0)
    assert closed == [True]
