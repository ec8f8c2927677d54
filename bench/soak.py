"""Soak: many short jobs through the HTTP API and several worker processes, then a cleanup.

    python bench/soak.py [--jobs 100000] [--workers 4] [--concurrency 32] [--uploads 200]
                         [--big-every 1000] [--ttl 120]

Starts a throwaway redis-server (no persistence), one `jobrunner api` process (uvicorn) and
WORKERS `jobrunner worker` processes on one data dir, creates an API key through the admin
route, uploads UPLOADS small files, and POSTs JOBS `demo.echo` jobs (every BIG_EVERY-th with a
70 KB param, so its result goes to a blob) with CONCURRENCY requests in flight. Records, results,
idempotency keys and blobs are kept TTL seconds (uploads too), so once the last job is TTL
seconds old, `jobrunner maintenance cleanup` should leave Redis about where it started and the
blob dir empty. Prints jobs/s, bytes per job in Redis (MEMORY USAGE of a sample of the last
jobs' keys), the workers' peak RSS, Redis memory and blob dir size before and after cleanup.
Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
from redis.asyncio import Redis

from jobrunner.embedded import free_port, start_redis_server, stop_redis_server
from jobrunner.store.keys import Keys, arq_job

ROOT = Path(__file__).resolve().parents[1]
ADMIN = "soak-admin-token-0123456789"
CLI = [sys.executable, "-m", "jobrunner.cli"]
BIG = "x" * 70_000  # past JOBRUNNER_INLINE_RESULT_MAX_BYTES (64 KiB): the result is a blob


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def mib(n: float) -> str:
    return f"{n / 2**20:.1f} MiB"


def dir_bytes(path: Path) -> tuple[int, int]:
    """Bytes and number of files under ``path``."""
    files = [p for p in path.rglob("*") if p.is_file()] if path.exists() else []
    return sum(p.stat().st_size for p in files), len(files)


def peak_rss(pid: int) -> int:
    """The process's high-water resident set size (VmHWM), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def environment(redis_url: str, prefix: str, data: Path, ttl: int) -> dict[str, str]:
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("JOBRUNNER_")},
        "JOBRUNNER_REDIS_URL": redis_url,
        "JOBRUNNER_KEY_PREFIX": prefix,
        "JOBRUNNER_DATA_DIR": str(data),
        "JOBRUNNER_DEMO_TASKS": "true",
        "JOBRUNNER_PIPELINE_TASKS": "false",
        "JOBRUNNER_ADMIN_TOKEN": ADMIN,
        "JOBRUNNER_LOG_JSON": "true",
        "JOBRUNNER_LOG_LEVEL": "warning",
        "JOBRUNNER_RECORD_TTL_SECONDS": str(ttl),
        "JOBRUNNER_RESULT_TTL_SECONDS": str(ttl),
        "JOBRUNNER_IDEMPOTENCY_TTL_SECONDS": str(ttl),
        "JOBRUNNER_UPLOAD_RETENTION_HOURS": str(ttl / 3600),
        # the workers' own cleanup and prune runs stay out of the measured window
        "JOBRUNNER_CLEANUP_CRON": "0 3 1 1 *",
        "JOBRUNNER_PRUNE_CRON": "0 3 1 1 *",
    }


class Deployment:
    """The API and worker processes; their output goes to files in ``logs``."""

    def __init__(self, env: dict[str, str], logs: Path, workers: int) -> None:
        self.env = env
        self.logs = logs
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.api = self._spawn("api", [*CLI, "api", "--port", str(self.port)])
        self.workers = [
            self._spawn(f"worker-{i}", [*CLI, "worker", "--queues", "pro"]) for i in range(workers)
        ]

    def _spawn(self, name: str, argv: list[str]) -> subprocess.Popen[bytes]:
        with (self.logs / f"{name}.log").open("wb") as sink:
            return subprocess.Popen(argv, env=self.env, cwd=ROOT, stdout=sink, stderr=sink)

    def warnings(self) -> dict[str, Counter[str]]:
        """Per process log: how often each warning or error event was logged."""
        found: dict[str, Counter[str]] = {}
        for log in sorted(self.logs.glob("*.log")):
            events: Counter[str] = Counter()
            for line in log.read_text(errors="replace").splitlines():
                try:
                    entry = json.loads(line)
                except ValueError:
                    continue
                if isinstance(entry, dict) and entry.get("level") in ("warning", "error"):
                    events[str(entry.get("event"))] += 1
            if events:
                found[log.stem] = events
        return found

    def stop(self) -> None:
        for proc in (self.api, *self.workers):
            proc.terminate()
        for proc in (self.api, *self.workers):
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)


async def wait_ready(deployment: Deployment, redis: Redis, keys: Keys) -> None:
    deadline = time.monotonic() + 60
    async with httpx.AsyncClient() as client:
        while True:
            try:
                if (await client.get(f"{deployment.url}/readyz", timeout=1)).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or deployment.api.poll() is not None:
                log = (deployment.logs / "api.log").read_text()[-2000:]
                raise RuntimeError(f"the API did not come up:\n{log}")
            await asyncio.sleep(0.1)
    while await redis.zcard(keys.workers) < len(deployment.workers):
        if time.monotonic() > deadline:
            raise RuntimeError("the workers did not register")
        await asyncio.sleep(0.1)


async def make_key(client: httpx.AsyncClient) -> dict[str, str]:
    body = {"tenant": "soak", "plan": "pro", "monthly_quota": 10**9, "rate_limit_per_s": 10**6}
    made = await client.post(
        "/api/v1/admin/keys", json=body, headers={"Authorization": f"Bearer {ADMIN}"}
    )
    made.raise_for_status()
    return {"Authorization": f"Bearer {made.json()['api_key']}"}


async def upload(client: httpx.AsyncClient, auth: dict[str, str], count: int) -> None:
    for n in range(count):
        reply = await client.post(
            "/api/v1/uploads",
            params={"filename": f"soak-{n}.csv"},
            content=b"sku,price\n" + b"A-1,9.99\n" * 400,
            headers={**auth, "Content-Type": "text/csv"},
        )
        reply.raise_for_status()


async def submit(
    client: httpx.AsyncClient, auth: dict[str, str], args: Any
) -> tuple[list[str], Counter[str]]:
    """POST ``args.jobs`` jobs, ``args.concurrency`` at once; the ids (in order) and why the
    others were refused (HTTP status and problem code, or the client's exception)."""
    ids: list[str | None] = [None] * args.jobs
    errors: Counter[str] = Counter()
    counter = iter(range(args.jobs))

    async def loop() -> None:
        for n in counter:
            big = args.big_every and n % args.big_every == 0
            params = {"n": n, "pad": BIG} if big else {"n": n}
            try:
                reply = await client.post(
                    "/api/v1/jobs", json={"task": "demo.echo", "params": params}, headers=auth
                )
            except httpx.HTTPError as exc:
                errors[type(exc).__name__] += 1
                continue
            if reply.status_code == 202:
                ids[n] = reply.json()["id"]
            else:
                kind = reply.json().get("type", "") if reply.content else ""  # /problems/<code>
                errors[f"{reply.status_code} {kind}".strip()] += 1

    await asyncio.gather(*(loop() for _ in range(args.concurrency)))
    return [i for i in ids if i is not None], errors


async def completed(redis: Redis, keys: Keys) -> int:
    counts = await redis.hgetall(keys.completed_counts)
    return sum(int(v) for v in counts.values())


async def wait_done(redis: Redis, keys: Keys, total: int, timeout: float) -> float:
    """Until ``total`` jobs have ended; the time it happened (monotonic)."""
    deadline = time.monotonic() + timeout
    while (done := await completed(redis, keys)) < total:
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {done} of {total} jobs ended within {timeout:g}s")
        await asyncio.sleep(0.2)
    return time.monotonic()


async def footprint(redis: Redis, keys: Keys, sample: list[str]) -> dict[str, float]:
    """Average MEMORY USAGE per job of each kind of key the sampled jobs have."""
    kinds = {
        "record": keys.job,
        "audit trail": keys.audit,
        "result": keys.result,
        "events": keys.events,
        "arq job": arq_job,
    }
    averages: dict[str, float] = {}
    for kind, name in kinds.items():
        sizes = [await redis.memory_usage(name(job_id)) for job_id in sample]
        found = [s for s in sizes if s]
        if found:
            averages[kind] = sum(found) / len(sample)
    return averages


async def used_memory(redis: Redis) -> tuple[int, int]:
    """used_memory, and the same less the clients' buffers (connection pools grown under load
    are not memory the jobs left behind)."""
    info = await redis.info("memory")
    used = int(info["used_memory"])
    return used, used - int(info["mem_clients_normal"])


def memory_text(memory: tuple[int, int], start: tuple[int, int] | None = None) -> str:
    used, held = memory
    text = f"{mib(used)} ({mib(held)} less client buffers)"
    if start is not None:
        text += (
            f", {(used - start[0]) / start[0]:+.1%} ({(held - start[1]) / start[1]:+.1%}) vs start"
        )
    return text


def cleanup(env: dict[str, str]) -> dict[str, Any]:
    """`jobrunner maintenance cleanup --json`, as an operator runs it."""
    done = subprocess.run(
        [*CLI, "maintenance", "cleanup", "--json"],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=1800,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"cleanup failed: {done.stderr.strip()}")
    report = json.loads(done.stdout)
    assert isinstance(report, dict)
    return report


async def run_jobs(deployment: Deployment, redis: Redis, keys: Keys, args: Any) -> list[str]:
    """Uploads, then the jobs through the API, until every one has ended; prints the rates."""
    limits = httpx.Limits(max_connections=args.concurrency)
    async with httpx.AsyncClient(base_url=deployment.url, timeout=60, limits=limits) as client:
        auth = await make_key(client)
        await upload(client, auth, args.uploads)
        started = time.monotonic()
        ids, errors = await submit(client, auth, args)
        submitted = time.monotonic()
    ended = await wait_done(redis, keys, len(ids), timeout=args.jobs / 20 + 600)
    print(
        f"submitted {len(ids)} jobs through the API ({sum(errors.values())} refused: "
        f"{dict(errors) or 'none'}) in "
        f"{submitted - started:.1f} s: {len(ids) / (submitted - started):.0f} submits/s"
    )
    took = ended - started
    print(f"all {len(ids)} ended {took:.1f} s after the first submit: {len(ids) / took:.0f} jobs/s")
    return ids


async def measure_run(
    deployment: Deployment, redis: Redis, keys: Keys, ids: list[str], data: Path
) -> None:
    """Per-job bytes, worker RSS, Redis and blob figures at the end of the run."""
    sample = ids[-200:]  # the most recent: their records and results are still alive
    averages = await footprint(redis, keys, sample)
    parts = ", ".join(f"{kind} {size:.0f}" for kind, size in averages.items())
    print(f"bytes per job (MEMORY USAGE, {len(sample)} recent jobs): {sum(averages.values()):.0f}"
          f" ({parts})")  # fmt: skip
    rss = [peak_rss(w.pid) for w in deployment.workers]
    api_rss = mib(peak_rss(deployment.api.pid))
    print(f"workers' peak RSS: {', '.join(mib(r) for r in rss)} (API: {api_rss})")
    memory, blobs = await used_memory(redis), dir_bytes(data / "blobs")
    print(f"Redis used_memory after the run: {memory_text(memory)}; blob dir {mib(blobs[0])}, "
          f"{blobs[1]} files")  # fmt: skip


async def after_retention(
    deployment: Deployment, redis: Redis, data: Path, args: Any, start: tuple[int, int]
) -> None:
    """Wait out the retention of the last job, run the cleanup, print what is left."""
    print(f"waiting {args.ttl + 5} s for the last records, results and blobs to pass retention")
    await asyncio.sleep(args.ttl + 5)
    before = await used_memory(redis)
    started = time.monotonic()
    report = await asyncio.to_thread(cleanup, deployment.env)
    took = time.monotonic() - started
    after, blobs = await used_memory(redis), dir_bytes(data / "blobs")
    print(f"cleanup took {took:.1f} s: {json.dumps(report)}")
    print(f"Redis used_memory before cleanup: {memory_text(before, start)}")
    print(f"Redis used_memory after cleanup:  {memory_text(after, start)}")
    print(f"blob dir after cleanup: {mib(blobs[0])}, {blobs[1]} files")


async def soak(args: Any, tmp: Path) -> None:
    server, redis_url = await start_redis_server(tmp / "redis", persist=False)
    prefix = f"soak-{uuid.uuid4().hex[:8]}"
    keys = Keys(prefix)
    redis = Redis.from_url(redis_url)
    env = environment(redis_url, prefix, tmp / "data", args.ttl)
    deployment = Deployment(env, tmp, args.workers)
    try:
        await wait_ready(deployment, redis, keys)
        start, start_blobs = await used_memory(redis), dir_bytes(tmp / "data" / "blobs")
        print(f"Redis used_memory at start: {memory_text(start)}; blob dir {mib(start_blobs[0])}")
        ids = await run_jobs(deployment, redis, keys, args)
        await measure_run(deployment, redis, keys, ids, tmp / "data")
        await after_retention(deployment, redis, tmp / "data", args, start)
    finally:
        await asyncio.to_thread(deployment.stop)
        logged = deployment.warnings()
        print(f"warnings and errors logged: {({k: dict(v) for k, v in logged.items()}) or 'none'}")
        await redis.aclose()
        await stop_redis_server(server)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--uploads", type=int, default=200)
    parser.add_argument("--big-every", type=int, default=1000)
    parser.add_argument("--ttl", type=int, default=120, help="retention of everything, seconds")
    args = parser.parse_args()
    print(f"uptime: {uptime()}  ({os.cpu_count()} CPUs)")
    print(
        f"{args.jobs} jobs, {args.workers} worker processes, {args.concurrency} submits in flight"
    )
    with tempfile.TemporaryDirectory(prefix="soak-") as tmp:
        asyncio.run(soak(args, Path(tmp)))
    print(f"uptime: {uptime()}")


if __name__ == "__main__":
    main()
