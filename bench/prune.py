"""Pruning rate: can the cleanup keep up with a million finished jobs a day?

    python bench/prune.py [--jobs 200000] [--blobs 5000] [--batch 50] [--queued 50000]

Starts a throwaway redis-server (or uses BENCH_REDIS_URL with a fresh key prefix), creates N
jobs that finished (cancelled) and whose records have since expired (deleted, as their TTL
would), so only their index entries are left, plus B uploads past retention; then runs the
prune and the cleanup as the cron does and prints: entries removed per second, Redis calls,
the longest single call (as the client saw it, and server-side from SLOWLOG) and the longest
PING another connection saw meanwhile (how long Redis was blocked). Then a reconcile pass over
Q healthy queued jobs (what the every-minute reconcile costs). Asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from redis.asyncio import Redis

from jobrunner.domain.models import AuditEntry
from jobrunner.domain.status import WAITING, JobStatus
from jobrunner.embedded import start_redis_server, stop_redis_server
from jobrunner.registry import Registry
from jobrunner.runtime import JobRunner
from jobrunner.settings import Settings
from jobrunner.store.blobindex import BlobIndex
from jobrunner.store.jobs import Transition
from jobrunner.store.keys import arq_job
from jobrunner.tasks.catalog import build_registry
from jobrunner.tasks.upkeep import Report, Upkeep

CHUNK = 1000
Measured = tuple[dict[str, Any], float, float, float, int]  # report, PING, server_side()
DAY_MS = 86_400_000


async def fill(runner: JobRunner, jobs: int) -> None:
    """``jobs`` finished jobs whose records have expired: only index entries remain."""
    cancel = Transition(
        target=JobStatus.CANCELLED,
        allowed_from=WAITING,
        fields={"finished_at": time.time() * 1000},
        audit=AuditEntry(at=datetime.now(tz=UTC), event="cancelled", status=JobStatus.CANCELLED),
    )
    script = runner.redis.register_script(
        (Path(__file__).parents[1] / "src/jobrunner/store/lua/transition.lua").read_text()
    )
    tenants = [f"tenant{i}" for i in range(20)]
    for start in range(0, jobs, CHUNK):
        n = min(CHUNK, jobs - start)
        requests = [
            {"task": "demo.echo", "params": {}, "tenant": tenants[(start + i) % len(tenants)]}
            for i in range(n)
        ]
        records = await runner.enqueue_many(requests)
        async with runner.redis.pipeline(transaction=False) as pipe:
            for record in records:
                keys, args = runner.store.transition_call(record.id, cancel, time.time() * 1000)
                await script(keys=keys, args=args, client=pipe)
            await pipe.execute()
        async with runner.redis.pipeline(transaction=False) as pipe:
            for record in records:  # the record TTL passed; arq's entries were never run
                pipe.delete(runner.keys.job(record.id), runner.keys.audit(record.id))
                pipe.delete(arq_job(record.id))
                pipe.zrem(record.queue, record.id)
            await pipe.execute()


async def fill_blobs(runner: JobRunner, blobs: int) -> None:
    index = BlobIndex(runner.redis, runner.keys, ttl_seconds=3600)
    for start in range(0, blobs, 200):
        refs = await asyncio.gather(
            *(
                runner.blobs.put_bytes(b"x" * 100, name="in.csv", scheme="upload")
                for _ in range(min(200, blobs - start))
            )
        )
        for ref in refs:
            await index.record(ref, tenant="tenant0", content_type="text/csv")


async def ping_watch(url: str, stop: asyncio.Event) -> float:
    """The longest PING round trip (ms) while ``stop`` is not set."""
    client = Redis.from_url(url)
    longest = 0.0
    try:
        while not stop.is_set():
            started = time.perf_counter()
            await client.ping()
            longest = max(longest, (time.perf_counter() - started) * 1000)
            await asyncio.sleep(0.001)
    finally:
        await client.aclose()
    return longest


async def server_side(redis: Redis) -> tuple[float, float, int]:
    """Our Lua calls inside Redis: mean and longest ms, how many took over 10 ms (INFO
    commandstats and SLOWLOG)."""
    stats = await redis.info("commandstats")
    mean = float(stats.get("cmdstat_evalsha", {}).get("usec_per_call", 0)) / 1000
    durations = [e["duration"] / 1000 for e in await redis.slowlog_get(10_000)]
    return mean, max(durations, default=0.0), sum(d > 10 for d in durations)


async def measure(runner: JobRunner, url: str, work: Callable[[], Awaitable[Report]]) -> Measured:
    """The report of ``work``, the longest PING meanwhile, then ``server_side``."""
    await runner.redis.slowlog_reset()
    await runner.redis.config_resetstat()
    stop = asyncio.Event()
    watcher = asyncio.create_task(ping_watch(url, stop))
    report = await work()
    stop.set()
    ping_ms = await watcher
    return (report, ping_ms, *await server_side(runner.redis))


def show_calls(measured: Measured) -> None:
    report, ping_ms, mean_ms, server_ms, slow = measured
    print(f"  {report['redis_calls']:,} Redis calls; longest as the client saw it "
          f"{report['longest_call_ms']:.2f} ms; inside Redis: mean Lua call {mean_ms:.2f} ms, "
          f"longest {server_ms:.2f} ms, {slow} over 10 ms (SLOWLOG)")  # fmt: skip
    print(f"  longest PING from another connection meanwhile: {ping_ms:.2f} ms")


async def pruning(runner: JobRunner, url: str, upkeep: Upkeep, now_ms: float) -> None:
    for name in ("prune", "cleanup"):  # prune: the jobs; cleanup: then the uploads
        run = upkeep.prune if name == "prune" else upkeep.cleanup
        measured = await measure(runner, url, lambda run=run: run(now_ms))  # type: ignore[misc]
        report = measured[0]
        seconds = report["seconds"] or 1e-9
        jobs = report["jobs_pruned"]
        entries = report["index_entries"] + jobs  # and each job's entry in the finished set
        print(f"{name}: {jobs:,} jobs ({entries:,} index entries) pruned in {seconds:.2f} s")
        print(f"  {jobs / seconds:,.0f} jobs/s, {entries / seconds:,.0f} entries/s")
        if name == "cleanup":
            uploads = report["uploads_deleted"]
            print(f"  {uploads:,} uploads deleted: {uploads / seconds:,.0f} blobs/s")
        show_calls(measured)


async def reconciling(runner: JobRunner, url: str, upkeep: Upkeep, queued: int) -> None:
    """A reconcile pass over ``queued`` healthy waiting jobs (what every minute costs)."""
    for start in range(0, queued, CHUNK):
        n = min(CHUNK, queued - start)
        await runner.enqueue_many([{"task": "demo.echo", "params": {}} for _ in range(n)])
    later = time.time() * 1000 + 60_000  # past the grace
    measured = await measure(runner, url, lambda: upkeep.reconcile(later))
    report = measured[0]
    seconds = report["seconds"] or 1e-9
    print(f"reconcile: {report['looked_at']:,} records and queue entries looked at in "
          f"{seconds:.2f} s ({report['looked_at'] / seconds:,.0f}/s), "
          f"{report['queued_reenqueued']} fixed")  # fmt: skip
    show_calls(measured)


async def main(args: argparse.Namespace) -> None:
    server = None
    url = os.environ.get("BENCH_REDIS_URL")
    if url is None:
        server, url = await start_redis_server(Path(tempfile.mkdtemp()), persist=False)
    data = Path(tempfile.mkdtemp())
    settings = Settings(
        _env_file=None,
        redis_url=url,
        key_prefix=f"bench-{uuid.uuid4().hex[:8]}",
        data_dir=data,
        demo_tasks=True,
        maintenance_batch=args.batch,
    )
    try:
        registry: Registry = build_registry(settings)
        async with JobRunner(settings, registry, warn_unserved=False) as runner:
            await runner.redis.config_set("slowlog-log-slower-than", 500)
            await runner.redis.config_set("slowlog-max-len", 10_000)
            started = time.perf_counter()
            await fill(runner, args.jobs)
            await fill_blobs(runner, args.blobs)
            print(
                f"filled {args.jobs:,} expired jobs and {args.blobs:,} uploads in "
                f"{time.perf_counter() - started:.1f} s (batch: {args.batch} jobs per call)"
            )
            upkeep = Upkeep(runner.store, runner.blobs, settings)
            later = time.time() * 1000 + settings.record_ttl_seconds * 1000 + DAY_MS
            await pruning(runner, url, upkeep, later)
            need = 1_000_000 / 86_400
            print(f"a million finished jobs a day is {need:.1f} jobs/s to prune")
            if args.queued:
                await reconciling(runner, url, upkeep, args.queued)
    finally:
        if server is not None:
            await stop_redis_server(server)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=200_000)
    parser.add_argument("--blobs", type=int, default=5_000)
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--queued", type=int, default=50_000, help="waiting jobs to reconcile")
    asyncio.run(main(parser.parse_args()))
