"""Throughput and latency: jobrunner vs raw arq on the same Redis, same worker concurrency.

    python bench/throughput.py [--jobs 5000] [--concurrency 50] [--samples 200]

Starts a throwaway redis-server (or uses BENCH_REDIS_URL), runs each worker as its own process
(`arq jobrunner.worker.WorkerSettings` and `arq bench.raw_arq_worker.WorkerSettings`), enqueues
N no-op `demo.echo` jobs from this process, and times enqueue-to-last-completion. Then measures
enqueue-to-start latency of single jobs on an idle worker. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from arq.connections import ArqRedis, RedisSettings, create_pool

from jobrunner.embedded import start_redis_server, stop_redis_server
from jobrunner.runtime import JobRunner
from jobrunner.settings import Settings
from jobrunner.tasks.catalog import build_registry

ROOT = Path(__file__).resolve().parents[1]
ARQ = str(Path(sys.executable).with_name("arq"))


async def spawn(args: list[str], env: dict[str, str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        *args,
        env={**os.environ, **env},
        cwd=ROOT,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )


async def stop(proc: asyncio.subprocess.Process) -> None:
    proc.terminate()
    await asyncio.wait_for(proc.wait(), 30)


async def drained(redis: ArqRedis, queue: str) -> None:
    while await redis.zcard(queue):
        await asyncio.sleep(0.01)


async def bounded(n: int, make: Callable[[int], Awaitable[Any]], width: int = 100) -> None:
    for start in range(0, n, width):
        await asyncio.gather(*(make(i) for i in range(start, min(n, start + width))))


async def run_jobrunner(url: str, args: argparse.Namespace) -> tuple[float, list[float]]:
    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    env = {
        "JOBRUNNER_REDIS_URL": url,
        "JOBRUNNER_KEY_PREFIX": prefix,
        "JOBRUNNER_DEMO_TASKS": "true",
        "JOBRUNNER_WORKER_QUEUES": "free",
        "JOBRUNNER_CONCURRENCY": str(args.concurrency),
        "JOBRUNNER_LOG_LEVEL": "warning",
    }
    settings = Settings(
        _env_file=None,
        redis_url=url,
        key_prefix=prefix,
        demo_tasks=True,
        data_dir=Path(tempfile.mkdtemp()),
    )  # type: ignore[call-arg]
    worker = await spawn([ARQ, "jobrunner.worker.WorkerSettings"], env)
    try:
        async with JobRunner(settings, build_registry(settings)) as jr:
            while not await jr.workers():
                await asyncio.sleep(0.05)
            queue = jr.keys.queue("free")
            started = time.perf_counter()
            await bounded(args.jobs, lambda i: jr.enqueue("demo.echo", {"i": i}))
            enqueued = time.perf_counter() - started
            await drained(jr.redis, queue)
            rate = args.jobs / (time.perf_counter() - started)
            print(f"jobrunner: enqueue phase {enqueued:.2f}s, total {args.jobs / rate:.2f}s")
            latencies = []
            for _ in range(args.samples):
                await asyncio.sleep(random.uniform(0.0, 0.6))
                job = await jr.enqueue("demo.echo", {})
                done = await jr.wait(job.id, timeout=10)
                assert done.started_at is not None
                latencies.append((done.started_at - job.created_at).total_seconds() * 1000)
    finally:
        await stop(worker)
    return rate, latencies


async def run_raw_arq(url: str, args: argparse.Namespace) -> tuple[float, list[float]]:
    queue = f"bench-raw-{uuid.uuid4().hex[:8]}"
    env = {"BENCH_REDIS_URL": url, "BENCH_QUEUE": queue, "BENCH_CONCURRENCY": str(args.concurrency)}
    worker = await spawn([ARQ, "bench.raw_arq_worker.WorkerSettings"], env)
    redis = await create_pool(RedisSettings.from_dsn(url), default_queue_name=queue)
    try:
        while not await redis.exists(queue + ":health-check"):
            await asyncio.sleep(0.05)
        started = time.perf_counter()
        await bounded(args.jobs, lambda i: redis.enqueue_job("demo.echo", i=i))
        enqueued = time.perf_counter() - started
        await drained(redis, queue)
        rate = args.jobs / (time.perf_counter() - started)
        print(f"raw arq:   enqueue phase {enqueued:.2f}s, total {args.jobs / rate:.2f}s")
        latencies = []
        for _ in range(args.samples):
            await asyncio.sleep(random.uniform(0.0, 0.6))
            job = await redis.enqueue_job("demo.echo")
            assert job is not None
            await job.result(timeout=10, poll_delay=0.005)
            info = await job.result_info()
            assert info is not None
            latencies.append((info.start_time - info.enqueue_time).total_seconds() * 1000)
    finally:
        await redis.aclose()
        await stop(worker)
    return rate, latencies


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--samples", type=int, default=200)
    args = parser.parse_args()
    url = os.environ.get("BENCH_REDIS_URL")
    server = None
    if not url:
        server, url = await start_redis_server(Path(tempfile.mkdtemp()), persist=False)
    try:
        jr_rate, jr_lat = await run_jobrunner(url, args)
        arq_rate, arq_lat = await run_raw_arq(url, args)
    finally:
        if server is not None:
            await stop_redis_server(server)
    jr_p50, jr_p99 = pct(jr_lat, 50), pct(jr_lat, 99)
    arq_p50, arq_p99 = pct(arq_lat, 50), pct(arq_lat, 99)
    print(f"jobs={args.jobs} concurrency={args.concurrency} samples={args.samples}")
    print(f"throughput  jobrunner {jr_rate:8.0f} jobs/s   raw arq {arq_rate:8.0f} jobs/s")
    print(f"throughput ratio jobrunner/arq {jr_rate / arq_rate:.2f}")
    print(f"idle enqueue->start  jobrunner p50 {jr_p50:6.1f} ms  p99 {jr_p99:6.1f} ms")
    print(f"idle enqueue->start  raw arq   p50 {arq_p50:6.1f} ms  p99 {arq_p99:6.1f} ms")


if __name__ == "__main__":
    asyncio.run(main())
