"""Worker cost per job: drain rate, worker CPU per job and Redis calls per job (worker side).

    python bench/worker_cpu.py [--jobs 20000] [--concurrency 100] [--profile out.prof] [--uvloop]

Starts a throwaway redis-server (never the one on 6379), prefills ``--jobs`` no-op ``demo.echo``
jobs with ``enqueue_many`` (not measured), then runs one ``WorkerRunner`` (all four plan queues,
as ``jobrunner worker`` does) in this process until the queue is drained. Prints the drain rate,
this process's CPU time per job (``time.process_time``, so the worker alone: nothing else runs
here meanwhile), Redis CPU per job and Redis commands per job from the ``INFO commandstats``
delta (commands inside Lua included). ``--profile`` writes a cProfile of the drain; ``--uvloop``
runs the event loop on uvloop (when installed) to see what it would save.
Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import sys
import tempfile
import time
import uuid
from pathlib import Path

from redis.asyncio import Redis

from jobrunner.embedded import start_redis_server, stop_redis_server
from jobrunner.logs import configure_logging
from jobrunner.runtime import JobRunner
from jobrunner.settings import Settings
from jobrunner.tasks.catalog import build_registry
from jobrunner.worker.runner import WorkerRunner


async def _stats(redis: Redis) -> tuple[float, dict[str, int]]:
    cpu = await redis.info("cpu")
    calls = {k: int(v["calls"]) for k, v in (await redis.info("commandstats")).items()}
    return float(cpu["used_cpu_sys"]) + float(cpu["used_cpu_user"]), calls


async def _prefill(jr: JobRunner, n: int) -> None:
    for start in range(0, n, 1000):
        batch = [
            {"task": "demo.echo", "params": {"i": i}} for i in range(start, min(n, start + 1000))
        ]
        await jr.enqueue_many(batch)


async def run(url: str, args: argparse.Namespace) -> None:
    settings = Settings(_env_file=None, redis_url=url, key_prefix=f"bench-{uuid.uuid4().hex[:8]}",
                        demo_tasks=True, pipeline_tasks=False, log_level="warning",
                        data_dir=Path(tempfile.mkdtemp()))  # type: ignore[call-arg]  # fmt: skip
    async with JobRunner(settings, build_registry(settings)) as jr:
        await _prefill(jr, args.jobs)
        queue = jr.keys.queue(settings.default_plan)
        redis_cpu0, calls0 = await _stats(jr.redis)
        profiler = cProfile.Profile() if args.profile else None
        cpu0, wall0 = time.process_time(), time.perf_counter()
        if profiler:
            profiler.enable()
        worker = WorkerRunner(settings, jr.registry, redis=jr.redis, concurrency=args.concurrency)
        await worker.start()
        while await jr.redis.zcard(queue):
            await asyncio.sleep(0.02)
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        if profiler:
            profiler.disable()
            profiler.dump_stats(args.profile)
        await worker.stop(grace=5)
        redis_cpu1, calls1 = await _stats(jr.redis)
    n = args.jobs
    calls = {k: v - calls0.get(k, 0) for k, v in calls1.items() if v - calls0.get(k, 0) > 0}
    top = sorted(calls.items(), key=lambda kv: -kv[1])[:12]
    print(f"jobs={n} concurrency={args.concurrency}")
    print(f"drain {n / wall:,.0f} jobs/s; worker CPU {cpu / n * 1e6:.0f} us/job; "
          f"Redis CPU {(redis_cpu1 - redis_cpu0) / n * 1e6:.0f} us/job; "
          f"Redis calls {sum(calls.values()) / n:.1f}/job")  # fmt: skip
    print("  " + ", ".join(f"{k[8:]} {v / n:.2f}" for k, v in top))


async def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=20000)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--profile", default="")
    parser.add_argument("--uvloop", action="store_true")
    args = parser.parse_args()
    configure_logging(json=False, level="warning")  # as `jobrunner worker --log-level warning`
    server, url = await start_redis_server(Path(tempfile.mkdtemp()), persist=False)
    try:
        await run(url, args)
    finally:
        await stop_redis_server(server)


if __name__ == "__main__":
    if "--uvloop" in sys.argv:
        import uvloop

        uvloop.run(main())
    else:
        asyncio.run(main())
