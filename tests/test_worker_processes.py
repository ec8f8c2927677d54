"""Workers as real processes: the plain arq command, SIGKILL recovery, SIGTERM draining."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from jobrunner.domain.status import JobStatus
from jobrunner.runtime import JobRunner
from jobrunner.store.pickup import Pickup
from jobrunner.worker.runner import WorkerRunner
from tests.polling import wait_running

ARQ = str(Path(sys.executable).with_name("arq"))


def worker_env(runner: JobRunner, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBRUNNER_")}
    env.update(
        JOBRUNNER_REDIS_URL=runner.redis_url,
        JOBRUNNER_KEY_PREFIX=runner.settings.key_prefix,
        JOBRUNNER_DATA_DIR=str(runner.settings.data_dir),
        JOBRUNNER_DEMO_TASKS="true",
        JOBRUNNER_LEASE_SECONDS="2",
        JOBRUNNER_HEARTBEAT_SECONDS="0.5",
        JOBRUNNER_CONCURRENCY="8",
        **extra,
    )
    return env


def start_arq_worker(
    runner: JobRunner, procs: list[subprocess.Popen[bytes]], **extra: str
) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [ARQ, "jobrunner.worker.WorkerSettings"],
        env=worker_env(runner, **extra),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    procs.append(proc)
    return proc


async def test_plain_arq_command_runs_jobs(
    runner: JobRunner, spawn: list[subprocess.Popen[bytes]]
) -> None:
    proc = start_arq_worker(runner, spawn)
    job = await runner.enqueue("demo.echo", {"via": "arq"}, plan="pro")
    done = await runner.wait(job.id, timeout=30)
    assert done.status is JobStatus.SUCCEEDED
    assert await runner.result(job.id) == {"via": "arq"}
    assert len(await runner.workers()) == 1
    proc.send_signal(signal.SIGTERM)
    assert await asyncio.to_thread(proc.wait, 15) == 0
    assert await runner.workers() == []


async def test_sigkilled_worker_job_runs_again_and_succeeds(
    runner: JobRunner, spawn: list[subprocess.Popen[bytes]]
) -> None:
    first = start_arq_worker(runner, spawn)
    job = await runner.enqueue("demo.sleep", {"seconds": 2, "steps": 4})
    await wait_running(runner, job.id)
    first.send_signal(signal.SIGKILL)
    await asyncio.to_thread(first.wait, 10)
    killed_at = time.monotonic()
    start_arq_worker(runner, spawn)
    done = await runner.wait(job.id, timeout=40)
    assert done.status is JobStatus.SUCCEEDED
    assert done.attempts == 2
    assert done.interruptions == 1
    # recovered after the short lease (2 s here), not arq's timeout + 10 s
    assert time.monotonic() - killed_at < 15


async def test_sigterm_drains_running_jobs(
    runner: JobRunner, spawn: list[subprocess.Popen[bytes]]
) -> None:
    proc = start_arq_worker(runner, spawn, JOBRUNNER_SHUTDOWN_GRACE_SECONDS="10")
    job = await runner.enqueue("demo.sleep", {"seconds": 1.5, "steps": 3})
    await wait_running(runner, job.id)
    proc.send_signal(signal.SIGTERM)
    assert await asyncio.to_thread(proc.wait, 20) == 0
    done = await runner.get(job.id)
    assert done.status is JobStatus.SUCCEEDED
    assert done.attempts == 1


async def test_shutdown_past_grace_leaves_the_job_to_run_again(runner: JobRunner) -> None:
    job = await runner.enqueue("demo.sleep", {"seconds": 2, "steps": 4})
    first = WorkerRunner(runner.settings, runner.registry, redis=runner.redis)
    await first.start()
    await wait_running(runner, job.id)
    await first.stop(grace=0.1)
    interrupted = await runner.get(job.id)
    assert interrupted.status is JobStatus.QUEUED  # never failed, never lost
    assert interrupted.interruptions == 1
    async with WorkerRunner(runner.settings, runner.registry, redis=runner.redis):
        done = await runner.wait(job.id, timeout=15)
    assert done.status is JobStatus.SUCCEEDED
    assert done.attempts == 2
    events = [a.event for a in await runner.audit(job.id)]
    assert events[:3] == ["enqueued", "started", "interrupted"]
    assert events.count("started") == 2
    assert events[-1] == "succeeded"


async def test_stop_while_a_claim_is_in_flight_hands_the_job_back(
    runner: JobRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The claim's reply arrives after the stop began: its job is still seen and interrupted
    (not left running under a lease nobody renews)."""
    job = await runner.enqueue("demo.sleep", {"seconds": 2, "steps": 4}, plan="free")
    claim = Pickup.claim
    claimed, release = asyncio.Event(), asyncio.Event()

    async def slow_reply(self: Pickup, *args: Any, **kwargs: Any) -> Any:
        reply = await claim(self, *args, **kwargs)
        if reply[0]:
            claimed.set()
            await release.wait()  # the reply is "still on the wire"
        return reply

    monkeypatch.setattr(Pickup, "claim", slow_reply)
    worker = WorkerRunner(runner.settings, runner.registry, redis=runner.redis, queues=["free"])
    await worker.start()
    await asyncio.wait_for(claimed.wait(), 20)
    assert (await runner.get(job.id)).status is JobStatus.RUNNING
    stopping = asyncio.create_task(worker.stop(grace=0.1))
    await asyncio.sleep(0)  # one loop step: stop() has begun before the reply arrives
    release.set()
    await stopping
    interrupted = await runner.get(job.id)
    assert interrupted.status is JobStatus.QUEUED
    assert interrupted.interruptions == 1
