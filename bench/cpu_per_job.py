"""Client cost of single-job submit: jobs/s, client CPU per job and Redis calls per job.

    python bench/cpu_per_job.py [--jobs 20000] [--inflight 50] [--rounds 3]

Starts a throwaway redis-server (never the one on 6379), opens one JobRunner and keeps
``--inflight`` single-job ``enqueue`` calls in flight from this one process until ``--jobs`` jobs
are queued (no worker runs: this measures the submitting side alone, so the runner's
no-worker warning is switched off). Per round it prints the
wall-clock rate, this process's CPU time per job (``time.process_time``), Redis's own CPU per
job and Redis commands per job from the ``INFO commandstats`` delta (commands a Lua script runs
are counted, as are the EVALSHA calls themselves). Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from redis.asyncio import Redis

from jobrunner.embedded import start_redis_server, stop_redis_server
from jobrunner.runtime import JobRunner
from jobrunner.settings import Settings
from jobrunner.tasks.catalog import build_registry


@dataclass(frozen=True)
class Round:
    jobs: int
    wall_s: float
    cpu_s: float
    redis_cpu_s: float
    calls: dict[str, int]

    @property
    def calls_per_job(self) -> float:
        return sum(self.calls.values()) / self.jobs


async def server_counters(redis: Redis) -> tuple[dict[str, int], float]:
    """Calls by command, and Redis's own CPU seconds, so far."""
    stats: dict[str, Any] = await redis.info("commandstats")
    cpu: dict[str, Any] = await redis.info("cpu")
    calls = {name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in stats.items()}
    return calls, float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"])


async def submit_all(runner: JobRunner, jobs: int, inflight: int) -> None:
    left = iter(range(jobs))

    async def lane() -> None:
        for i in left:
            await runner.enqueue("demo.echo", {"i": i})

    await asyncio.gather(*(lane() for _ in range(inflight)))


async def one_round(runner: JobRunner, probe: Redis, jobs: int, inflight: int) -> Round:
    before, redis_cpu = await server_counters(probe)
    cpu, wall = time.process_time(), time.perf_counter()
    await submit_all(runner, jobs, inflight)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    after, redis_cpu_after = await server_counters(probe)
    calls = {k: n - before.get(k, 0) for k, n in after.items() if n - before.get(k, 0)}
    calls["info"] = calls.get("info", 0) - 2  # the probe's own INFO calls
    calls = {k: n for k, n in calls.items() if n > 0}
    return Round(jobs, wall, cpu, redis_cpu_after - redis_cpu, calls)


def show(r: Round, label: str) -> None:
    top = ", ".join(
        f"{k} {n / r.jobs:.2f}" for k, n in sorted(r.calls.items(), key=lambda kv: -kv[1])
    )
    print(
        f"{label}: {r.jobs / r.wall_s:7.0f} jobs/s  client CPU {r.cpu_s / r.jobs * 1e6:6.1f} µs/job"
        f"  redis CPU {r.redis_cpu_s / r.jobs * 1e6:5.1f} µs/job"
        f"  redis calls {r.calls_per_job:5.2f}/job ({top})"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--inflight", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    data = Path(tempfile.mkdtemp())
    server, url = await start_redis_server(data, persist=False)
    settings = Settings(
        _env_file=None,
        redis_url=url,
        key_prefix=f"bench-{uuid.uuid4().hex[:8]}",
        demo_tasks=True,
        data_dir=data,
    )  # type: ignore[call-arg]
    probe = Redis.from_url(url)
    try:
        async with JobRunner(settings, build_registry(settings), warn_unserved=False) as runner:
            await submit_all(runner, 500, args.inflight)  # warm up: scripts loaded, pool filled
            rounds = []
            for n in range(args.rounds):
                rounds.append(await one_round(runner, probe, args.jobs, args.inflight))
                show(rounds[-1], f"round {n + 1}")
    finally:
        await probe.aclose()
        await stop_redis_server(server)
    if rounds:
        middle = sorted(rounds, key=lambda r: r.cpu_s)[(len(rounds) - 1) // 2]
        show(middle, f"median ({args.jobs} jobs x {args.rounds}, {args.inflight} in flight)")


if __name__ == "__main__":
    asyncio.run(main())
