"""The child-process pool: calls, reuse, stop then kill, caps, deaths; each bounded."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator

import pytest

from jobrunner.errors import PermanentError, TransientError
from jobrunner.tasks.offload import Caps, ChildCrashed, run_in_child
from jobrunner.tasks.pool import ProcessPool
from tests.tasks import child_functions as fns
from tests.tasks.job_context import job_context

MB = 1024 * 1024
CAPS = Caps(memory_bytes=256 * MB, cpu_seconds=60, stop_grace=0.5)


@pytest.fixture
async def pool() -> AsyncIterator[ProcessPool]:
    pool = ProcessPool(1, name="test", allow=(fns.__name__,))
    yield pool
    await pool.close()


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


async def test_calls_run_in_one_kept_child_and_relay_progress(pool: ProcessPool) -> None:
    reported: list[float] = []
    ctx = job_context(reported)
    first = await run_in_child(ctx, pool, fns.whoami, CAPS, progress=(0.0, 50.0))
    second = await run_in_child(ctx, pool, fns.whoami, CAPS)
    assert first == second != os.getpid()
    assert pool.started == 1 and pool.pids == [first]
    await asyncio.sleep(0)  # progress lands through the loop
    assert 25.0 in reported and 50.0 in reported


async def test_task_errors_come_back_with_their_code_and_details(pool: ProcessPool) -> None:
    with pytest.raises(PermanentError) as info:
        await run_in_child(job_context(), pool, fns.refuses, CAPS)
    assert (info.value.code, info.value.details) == ("bad_input", {"row": 7})
    with pytest.raises(ChildCrashed, match="KeyError"):
        await run_in_child(job_context(), pool, fns.breaks, CAPS)
    assert pool.started == 1  # neither ends the child


async def _running(pool: ProcessPool, fn: object) -> tuple[asyncio.Task[object], int]:
    ctx = job_context()
    task = asyncio.create_task(run_in_child(ctx, pool, fn, CAPS))  # type: ignore[arg-type]
    async with asyncio.timeout(30):
        while not pool.pids:
            await asyncio.sleep(0.01)
    return task, pool.pids[0]


async def test_cancel_stops_a_cooperative_call_and_keeps_its_child(pool: ProcessPool) -> None:
    task, pid = await _running(pool, fns.steps_until_stopped)
    await asyncio.sleep(0.2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert pool.pids == [pid]  # it stopped by itself, so it serves the next job
    assert await run_in_child(job_context(), pool, fns.whoami, CAPS) == pid


async def test_cancel_kills_a_call_that_cannot_stop_within_the_grace(pool: ProcessPool) -> None:
    task, pid = await _running(pool, fns.busy_without_reports)
    await asyncio.sleep(0.2)
    loop = asyncio.get_running_loop()
    started = loop.time()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert loop.time() - started < CAPS.stop_grace + 2.0
    async with asyncio.timeout(10):
        while not gone(pid):
            await asyncio.sleep(0.01)
    fresh = await run_in_child(job_context(), pool, fns.whoami, CAPS)
    assert fresh != pid and pool.started == 2


async def test_memory_cap_fails_the_call_not_the_worker(pool: ProcessPool) -> None:
    with pytest.raises(PermanentError) as python:
        await run_in_child(job_context(), pool, fns.allocates_in_python, CAPS, megabytes=512)
    assert python.value.code == "input_too_large"
    with pytest.raises(PermanentError) as rust:  # polars aborts: told by its dying words
        await run_in_child(job_context(), pool, fns.allocates_in_polars, CAPS, rows=3_000_000)
    assert rust.value.code == "input_too_large"
    small = await run_in_child(job_context(), pool, fns.allocates_in_python, CAPS, megabytes=16)
    assert small == 16 * MB
    assert pool.started == 3  # each capped child was replaced


async def test_a_child_that_dies_is_a_retryable_loss(pool: ProcessPool) -> None:
    with pytest.raises(TransientError) as info:
        await run_in_child(job_context(), pool, fns.dies, CAPS, lost_code="thing_lost")
    assert info.value.code == "thing_lost"
    assert await run_in_child(job_context(), pool, fns.whoami, CAPS) in pool.pids


async def test_close_ends_every_child() -> None:
    pool = ProcessPool(2, name="test", allow=(fns.__name__,))
    ctx = job_context()
    pids = await asyncio.gather(*(run_in_child(ctx, pool, fns.whoami, CAPS) for _ in range(2)))
    await pool.close()
    assert all(gone(pid) for pid in pids)
    with pytest.raises(TransientError):
        await run_in_child(ctx, pool, fns.whoami, CAPS)


async def test_an_idle_child_killed_from_outside_is_replaced(pool: ProcessPool) -> None:
    first = await run_in_child(job_context(), pool, fns.whoami, CAPS)
    os.kill(first, 9)
    async with asyncio.timeout(10):
        while not gone(first):
            await asyncio.sleep(0.01)
    second = await run_in_child(job_context(), pool, fns.whoami, CAPS)
    assert second != first and pool.started == 2
