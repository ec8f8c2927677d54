"""Idle enqueue->start latency of one job, as the peers benchmark's lat phase measures it.

    python bench/idle_latency.py [--jobs 200] [--breakdown]

Starts a throwaway redis-server (never the one on 6379) and ONE real `jobrunner worker
--concurrency 100` process (all four plan queues, the peers benchmark's environment). The main
thread times each round trip: it takes t0, hops onto a uvloop thread that runs
``enqueue("bench.probe")``, ``wait()`` and ``result()``; the task body RPUSHes ``time.time()``
first thing, and enqueue->start is that stamp minus t0. Jobs go one at a time, each after a
random 0-20 ms pause. Prints p50/p95/p99 of enqueue->start and enqueue->result.

``--breakdown``: the worker process is this script (``--shim-worker``), which wraps a few
functions with timestamps before it runs the same ``jobrunner worker`` command, and the client
side is wrapped here too; prints where the time goes, stage by stage (median and p99 of each
stage's share, ms). The stamps cost a few µs each: take the headline figures from a run
without ``--breakdown``. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel
from redis.asyncio import Redis

from jobrunner.context import JobContext
from jobrunner.registry import task

ROOT = Path(__file__).resolve().parents[1]
STARTS, STAMPS = "bench:starts", "bench:stamps"
T = TypeVar("T")

_redis: Redis | None = None


def _r() -> Redis:
    """The task's own client (the peers adapter's ``R``), made on first use in the worker."""
    global _redis
    if _redis is None:
        _redis = Redis.from_url(os.environ["JOBRUNNER_REDIS_URL"])
    return _redis


class P(BaseModel):
    i: int


@task("bench.probe", timeout=60)
async def probe(ctx: JobContext, params: P) -> int:
    await _r().rpush(STARTS, time.time())
    return params.i


TASKS = [probe]


def pct(xs: list[float], p: float) -> float:
    """The peers harness's percentile (nearest rank on the sorted list)."""
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(p / 100 * (len(xs) - 1)))]


class LoopThread:
    """An event loop (uvloop, as the peers harness) in a thread; run() blocks until done."""

    def __init__(self) -> None:
        import uvloop

        self.loop = uvloop.new_event_loop()
        threading.Thread(target=self.loop.run_forever, daemon=True).start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()


# -- stamps (breakdown only) -------------------------------------------------------------------


def _wrap(owner: Any, name: str, before: Callable[..., None] | None, after: Any = None) -> None:
    """Wrap ``owner.name`` (a coroutine function or plain function) with stamps."""
    original = getattr(owner, name)
    if asyncio.iscoroutinefunction(original):

        @functools.wraps(original)
        async def awrapped(*args: Any, **kwargs: Any) -> Any:
            if before:
                before(*args, **kwargs)
            result = await original(*args, **kwargs)
            if after:
                after(result, *args, **kwargs)
            return result

        setattr(owner, name, awrapped)
    else:

        @functools.wraps(original)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if before:
                before(*args, **kwargs)
            result = original(*args, **kwargs)
            if after:
                after(result, *args, **kwargs)
            return result

        setattr(owner, name, wrapped)


def install_worker_stamps() -> None:
    """In the worker process: the wake message, the queue loop's poll, the claim call and its
    reply, the attempt's first step and the task call, per job; written to STAMPS after."""
    from jobrunner.store.pickup import Claimed, Pickup
    from jobrunner.worker import arq_worker, capacity, execution, wakeups

    last: dict[str, float] = {}
    per_job: dict[str, dict[str, float]] = {}
    claim_started: dict[int, float] = {}

    def on_wake(self: Any, data: Any) -> None:
        last["wake_msg"] = time.time()

    def on_poll(self: Any, plan: str) -> None:
        last["poll"] = time.time()

    def on_claim(self: Any, queue: str, **kw: Any) -> None:
        claim_started[id(asyncio.current_task())] = time.time()

    def on_claimed(result: Any, self: Any, queue: str, **kw: Any) -> None:
        now = time.time()
        began = claim_started.pop(id(asyncio.current_task()), now)
        for job in result[0]:
            if isinstance(job, Claimed):
                per_job[job.job_id] = {
                    "wake_msg": last.get("wake_msg", 0.0),
                    "poll": last.get("poll", 0.0),
                    "claim_call": began,
                    "claim_reply": now,
                }

    def on_run(self: Any, job: Any) -> None:
        per_job.setdefault(job.job_id, {})["run"] = time.time()

    def on_execute(t: Any, ctx: Any, record: Any) -> None:
        per_job.setdefault(record.id, {})["execute"] = time.time()

    _wrap(wakeups.WakeListener, "_wake", on_wake)
    _wrap(capacity.SharedCapacity, "free_for", on_poll)  # the poll, once done waiting
    _wrap(Pickup, "claim", on_claim, on_claimed)
    _wrap(arq_worker.JobRunnerWorker, "_run", on_run)
    _wrap(execution, "_execute", on_execute)

    original_run = arq_worker.JobRunnerWorker._run

    async def run_then_report(self: Any, job: Any) -> None:
        await original_run(self, job)
        stamps = per_job.pop(job.job_id, {})
        await _r().rpush(STAMPS, json.dumps({"id": job.job_id, **stamps}))

    arq_worker.JobRunnerWorker._run = run_then_report  # type: ignore[method-assign]


CLIENT: dict[str, float] = {}


def install_client_stamps() -> None:
    """In this process: admission done, the coalescer's send task, the pipeline sent and
    answered."""
    from jobrunner.admission import Admission
    from jobrunner.store.coalesce import Coalescer
    from jobrunner.store.creation import JobCreator

    def stamp(name: str) -> Callable[..., None]:
        def put(*args: Any, **kwargs: Any) -> None:
            CLIENT.setdefault(name, time.time())

        return put

    _wrap(Admission, "admit", None, stamp("admitted"))
    _wrap(Coalescer, "_deliver", stamp("flush"))
    _wrap(JobCreator, "_run", stamp("send"), stamp("reply"))


# -- the run -----------------------------------------------------------------------------------


def worker_env(url: str, data: Path) -> dict[str, str]:
    """The peers adapter's worker environment."""
    return {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "JOBRUNNER_REDIS_URL": url,
        "JOBRUNNER_TASKS": "bench.idle_latency:TASKS",
        "JOBRUNNER_LOG_LEVEL": "warning",
        "JOBRUNNER_DATA_DIR": str(data),
    }


def start_worker(url: str, data: Path, shim: bool) -> subprocess.Popen[bytes]:
    if shim:
        argv = [sys.executable, str(Path(__file__).resolve()), "--shim-worker"]
    else:
        argv = [str(Path(sys.executable).with_name("jobrunner"))]
    argv += ["worker", "--concurrency", "100"]
    return subprocess.Popen(argv, cwd=ROOT, env=worker_env(url, data), start_new_session=True)


def stop_worker(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


STAGES = [
    ("t0 -> coroutine on the client loop", "t0", "hop"),
    ("admission (parse, admit)", "hop", "admitted"),
    ("admitted -> coalescer's send begins", "admitted", "flush"),
    ("send begins -> pipeline sent", "flush", "send"),
    ("sent -> wake message in worker", "send", "wake_msg"),
    ("wake message -> queue poll goes on", "wake_msg", "poll"),
    ("poll -> claim call", "poll", "claim_call"),
    ("claim round trip (start.lua)", "claim_call", "claim_reply"),
    ("claim reply -> attempt's first step", "claim_reply", "run"),
    ("first step -> task call", "run", "execute"),
    ("task call -> body stamp", "execute", "start"),
]


def show_breakdown(rows: list[dict[str, float]]) -> None:
    print(f"breakdown over {len(rows)} jobs (ms; stage shares add up to the total)")
    print(f"  {'stage':40} {'p50':>7} {'p99':>7} {'mean':>7}")
    for label, a, b in STAGES:
        xs = [(row[b] - row[a]) * 1000 for row in rows if a in row and b in row]
        if xs:
            mean = sum(xs) / len(xs)
            print(f"  {label:40} {pct(xs, 50):7.3f} {pct(xs, 99):7.3f} {mean:7.3f}")
    also = [(row["reply"] - row["send"]) * 1000 for row in rows if "reply" in row]
    if also:
        label = "(client's create pipeline round trip"
        print(f"  {label:40} {pct(also, 50):7.3f} {pct(also, 99):7.3f})")


SCRIPTS: dict[str, str] = {}


def name_scripts(redis: Redis) -> None:
    """Which sha is which script, for the Redis-side lines."""
    from jobrunner.store.creation import _SCRIPT
    from jobrunner.store.scripts import record_script

    SCRIPTS[redis.register_script(_SCRIPT).sha] = "create_job"
    for name in ("start", "finish"):
        SCRIPTS[record_script(redis, name).sha] = name


def show_redis_side(entries: list[dict[str, Any]], jobs: int) -> None:
    """Execution time in Redis (SLOWLOG, everything logged) of the commands on a job's path."""
    by: dict[str, list[float]] = {}
    for e in entries:
        words = e["command"].split()
        name = words[0].decode().upper() if isinstance(words[0], bytes) else str(words[0])
        if name == "EVALSHA":
            sha = words[1].decode() if isinstance(words[1], bytes) else str(words[1])
            name = f"EVALSHA {SCRIPTS.get(sha, sha[:8])}"
        by.setdefault(name, []).append(e["duration"] / 1000)
    print("  in Redis, per call (ms; SLOWLOG):")
    for name, xs in sorted(by.items(), key=lambda kv: -sum(kv[1])):
        if len(xs) >= jobs // 2:
            print(f"    {name:32} {pct(xs, 50):7.3f} {pct(xs, 99):7.3f}  x{len(xs) / jobs:.1f}/job")


class Probe:
    """Round trips as the peers harness times them: t0 here, the rest on the loop thread."""

    def __init__(self, lt: LoopThread, jr: Any, plain: Redis) -> None:
        self.lt, self.jr, self.plain = lt, jr, plain
        self.seen: dict[str, dict[str, float]] = {}  # client stamps by job id

    async def _roundtrip(self, i: int) -> tuple[str, Any]:
        CLIENT["hop"] = time.time()
        job = await self.jr.enqueue("bench.probe", {"i": i})
        await self.jr.wait(job.id, timeout=10)
        return job.id, await self.jr.result(job.id)

    def one(self, i: int) -> tuple[float, float]:
        """Seconds to the task body's stamp and to the result, from t0."""
        CLIENT.clear()
        t0 = time.time()
        job_id, res = self.lt.run(self._roundtrip(i))
        t1 = time.time()
        assert res == i, (res, i)
        start = float(self.lt.run(_lpop(self.plain)))
        self.seen[job_id] = dict(CLIENT, t0=t0, start=start)
        return start - t0, t1 - t0


def probe_run(lt: LoopThread, probe: Probe, args: argparse.Namespace) -> None:
    plain = probe.plain
    time.sleep(1.0)
    while not lt.run(probe.jr.workers()):
        time.sleep(0.05)
    for i in range(5):  # warm-up
        probe.one(i)
    probe.seen.clear()
    if args.breakdown:  # every command's execution time in Redis, for the breakdown
        lt.run(plain.config_set("slowlog-log-slower-than", 0))
        lt.run(plain.config_set("slowlog-max-len", 100_000))
        lt.run(plain.slowlog_reset())
    rnd = random.Random(args.seed)
    to_start, to_result = [], []
    for i in range(args.jobs):
        time.sleep(rnd.uniform(0, 0.02))
        s, r = probe.one(i)
        to_start.append(s * 1000)
        to_result.append(r * 1000)
    mode = "breakdown (stamped worker)" if args.breakdown else "real worker"
    print(f"{args.jobs} sequential jobs, one `jobrunner worker --concurrency 100`, {mode}")
    for name, xs in (("enqueue->start ", to_start), ("enqueue->result", to_result)):
        figures = "  ".join(f"p{p} {pct(xs, p):6.3f} ms" for p in (50, 95, 99))
        print(f"  {name}  {figures}")
    if args.breakdown:
        time.sleep(0.3)  # the worker writes its stamps after each job's end
        rows = []
        for raw in lt.run(plain.lrange(STAMPS, 0, -1)):
            stamps = json.loads(raw)
            if stamps["id"] in probe.seen:
                rows.append({**probe.seen[stamps["id"]], **stamps})
        show_breakdown(rows)
        name_scripts(plain)
        show_redis_side(lt.run(plain.slowlog_get(100_000)), args.jobs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--breakdown", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    from jobrunner.embedded import start_redis_server, stop_redis_server
    from jobrunner.registry import Registry
    from jobrunner.runtime import JobRunner
    from jobrunner.settings import Settings

    if args.breakdown:
        install_client_stamps()
    lt = LoopThread()
    data = Path(tempfile.mkdtemp(prefix="idle-latency-"))
    server, url = lt.run(start_redis_server(data / "redis", persist=False))
    os.environ["JOBRUNNER_REDIS_URL"] = url
    settings = Settings(
        _env_file=None,
        redis_url=url,
        pipeline_tasks=False,
        log_level="warning",
        data_dir=data,
    )  # type: ignore[call-arg]
    jr = JobRunner(settings, Registry(TASKS))
    plain = Redis.from_url(url)
    worker = start_worker(url, data, args.breakdown)
    try:
        lt.run(jr.start())
        probe_run(lt, Probe(lt, jr, plain), args)
    finally:
        stop_worker(worker)
        with contextlib.suppress(Exception):
            lt.run(jr.aclose())
            lt.run(plain.aclose())
        lt.run(stop_redis_server(server))


async def _lpop(redis: Redis) -> Any:
    return await redis.lpop(STARTS)


def shim_worker(argv: list[str]) -> None:
    """The worker process of ``--breakdown``: stamps installed, then the real command."""
    install_worker_stamps()
    from jobrunner.cli import main as cli

    cli(argv, prog_name="jobrunner")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--shim-worker":
        sys.modules.setdefault("bench.idle_latency", sys.modules["__main__"])
        shim_worker(sys.argv[2:])
    else:
        main()
