"""HTTP submit throughput and latency: POST /api/v1/jobs vs a bare Starlette route.

    python bench/http_submit.py [--seconds 10] [--concurrency 50] [--pools 10] [--processes 1]

Starts a throwaway redis-server (or uses BENCH_REDIS_URL with a fresh key prefix), then one
uvicorn process each for `jobrunner api` (JSON access logs on, to /dev/null) and for a bare
Starlette route returning {} (bench/bare_app.py), both with the same uvicorn defaults. The same
httpx client drives each with CONCURRENCY requests in flight for SECONDS (after a 1 s warm-up)
and prints requests/s, p50/p99 latency, the ratio, the CPU time each server process and the
client spent per request (figures other load on the machine disturbs less than latency), and
the Redis commands per submit (INFO commandstats; a Lua script's own commands count too).
Targets: submit p99 <= 25 ms and >= 40% of the bare route's requests/s. Asserts nothing.

The client: httpx, its CONCURRENCY connections spread over POOLS clients (and PROCESSES
processes). One httpx pool of 50 connections spends ~5 ms of client CPU per request in
httpcore's pool bookkeeping (each pass walks every connection and queued request) and stalls
requests for seconds: with --pools 1 the bench measured its own client, not the server.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from raw_client import RawConnection, request_bytes  # beside this script
from redis.asyncio import Redis

from jobrunner.embedded import free_port, start_redis_server, stop_redis_server

ROOT = Path(__file__).resolve().parents[1]
ADMIN = "bench-admin-token-0123456789"
BODY = {"task": "demo.echo", "params": {"n": 1}}


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Figures:
    name: str
    latencies: list[float]
    errors: int
    seconds: float
    sent: int = 0  # every request, warm-up included
    client_cpu: float = 0.0  # seconds the client process(es) spent on them
    server_cpu: float = 0.0  # seconds the server process spent on them
    redis_calls: dict[str, int] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds

    def pct(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    def line(self) -> str:
        sent = max(self.sent, 1)
        return (
            f"{self.name:<22} {len(self.latencies):>7} ok {self.errors:>5} errors "
            f"{self.rate:>6.0f} req/s  p50 {self.pct(0.50):7.2f} ms  p99 {self.pct(0.99):7.2f} ms"
            f"  CPU/req server {self.server_cpu / sent * 1000:.2f} ms"
            f" client {self.client_cpu / sent * 1000:.2f} ms"
        )

    def calls_line(self) -> str:
        sent = max(self.sent, 1)
        total = sum(self.redis_calls.values()) / sent
        top = sorted(self.redis_calls.items(), key=lambda kv: -kv[1])
        shown = ", ".join(f"{name} {n / sent:.2f}" for name, n in top if n / sent >= 0.005)
        return f"Redis commands per submit: {total:.2f} ({shown})"


@dataclass(frozen=True)
class Load:
    """What one client process drives: CONCURRENCY loops over POOLS httpx clients."""

    url: str
    path: str
    headers: dict[str, str]
    concurrency: int
    pools: int
    start_at: float  # time.time() at which every process starts (warm-up included)
    seconds: float
    client: str = "httpx"  # or "raw" (bench/raw_client.py)


async def spawn(args: list[str], env: dict[str, str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        *args,
        env={**os.environ, **env},
        cwd=ROOT,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )


async def wait_up(url: str) -> None:
    async with httpx.AsyncClient() as client:
        for _ in range(400):
            try:
                await client.get(url, timeout=1)
                return
            except httpx.TransportError:
                await asyncio.sleep(0.05)
    raise RuntimeError(f"{url} did not come up")


def client_for(url: str, connections: int) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    return httpx.AsyncClient(base_url=url, limits=limits, timeout=30)


Post = Callable[[], Awaitable[int]]  # one request; its status


async def httpx_posters(load: Load) -> tuple[list[Post], Callable[[], Awaitable[None]]]:
    pools = [client_for(load.url, -(-load.concurrency // load.pools)) for _ in range(load.pools)]

    def poster(client: httpx.AsyncClient) -> Post:
        async def post() -> int:
            return (await client.post(load.path, json=BODY, headers=load.headers)).status_code

        return post

    async def close() -> None:
        for client in pools:
            await client.aclose()

    return [poster(pools[i % load.pools]) for i in range(load.concurrency)], close


async def raw_posters(load: Load) -> tuple[list[Post], Callable[[], Awaitable[None]]]:
    parts = urlsplit(load.url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    request = request_bytes(load.path, BODY, load.headers, f"{host}:{port}")
    connections = [await RawConnection.open(host, port) for _ in range(load.concurrency)]

    async def close() -> None:
        for connection in connections:
            await connection.close()

    return [functools.partial(c.post, request) for c in connections], close


async def drive(load: Load) -> tuple[list[float], int, int, float]:
    """(latencies measured after the 1 s warm-up, errors, requests sent, client CPU seconds)."""
    latencies: list[float] = []
    errors = sent = 0
    make = raw_posters if load.client == "raw" else httpx_posters
    posters, close = await make(load)
    await asyncio.sleep(max(0.0, load.start_at - time.time()))
    cpu, start = time.process_time(), time.perf_counter()
    measure_from, stop_at = start + 1.0, start + 1.0 + load.seconds

    async def loop(post: Post) -> None:
        nonlocal errors, sent
        while (now := time.perf_counter()) < stop_at:
            sent += 1
            try:
                ok = await post() < 300
            except (httpx.HTTPError, OSError, asyncio.IncompleteReadError, ValueError):
                ok = False
            took = time.perf_counter() - now
            if now >= measure_from:
                if ok:
                    latencies.append(took)
                else:
                    errors += 1

    await asyncio.gather(*(loop(post) for post in posters))
    cpu = time.process_time() - cpu
    await close()
    return latencies, errors, sent, cpu


def drive_in_process(load: Load) -> tuple[list[float], int, int, float]:
    return asyncio.run(drive(load))


async def run_load(
    name: str, pid: int, url: str, path: str, auth: dict[str, str], args: Any
) -> Figures:
    """Drive ``path`` from --processes processes; the server's CPU time meanwhile is counted."""
    share = [args.concurrency // args.processes] * args.processes
    share[0] += args.concurrency - sum(share)
    start_at = time.time() + (1.5 if args.processes > 1 else 0.0)
    pools = max(1, args.pools // args.processes)
    loads = [Load(url, path, auth, n, pools, start_at, args.seconds, args.client) for n in share]
    before = cpu_seconds(pid)
    if args.processes == 1:
        results = [await drive(loads[0])]
    else:
        loop = asyncio.get_running_loop()
        with ProcessPoolExecutor(args.processes) as pool:
            results = await asyncio.gather(
                *(loop.run_in_executor(pool, drive_in_process, one) for one in loads)
            )
    figures = Figures(name, [], 0, args.seconds, server_cpu=cpu_seconds(pid) - before)
    for latencies, errors, sent, cpu in results:
        figures.latencies += latencies
        figures.errors += errors
        figures.sent += sent
        figures.client_cpu += cpu
    return figures


async def command_counts(redis: Redis) -> dict[str, int]:
    stats: dict[str, Any] = await redis.info("commandstats")
    return {name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in stats.items()}


async def bench_submit(redis_url: str, args: Any) -> Figures:
    port = free_port()
    env = {
        "JOBRUNNER_REDIS_URL": redis_url,
        "JOBRUNNER_KEY_PREFIX": f"bench-{uuid.uuid4().hex[:8]}",
        "JOBRUNNER_DATA_DIR": tempfile.mkdtemp(prefix="bench-http-"),
        "JOBRUNNER_DEMO_TASKS": "true",
        "JOBRUNNER_ADMIN_TOKEN": ADMIN,
        "JOBRUNNER_LOG_JSON": "true",
        "JOBRUNNER_PLAN_RATE_LIMITS": '{"pro": 1000000}',
        "JOBRUNNER_PLAN_QUOTAS": '{"pro": 1000000000}',
    }
    proc = await spawn([sys.executable, "-m", "jobrunner.cli", "api", "--port", str(port)], env)
    url = f"http://127.0.0.1:{port}"
    probe = Redis.from_url(redis_url)
    try:
        await wait_up(f"{url}/openapi.json")
        async with httpx.AsyncClient(base_url=url) as client:
            made = await client.post(
                "/api/v1/admin/keys",
                json={"tenant": "bench", "plan": "pro"},
                headers={"Authorization": f"Bearer {ADMIN}"},
            )
        auth = {"Authorization": f"Bearer {made.json()['api_key']}"}
        before = await command_counts(probe)
        figures = await run_load("POST /api/v1/jobs", proc.pid, url, "/api/v1/jobs", auth, args)
        after = await command_counts(probe)
        after["info"] = after.get("info", 0) - 1  # the probe's own
        figures.redis_calls = {
            k: n - before.get(k, 0) for k, n in after.items() if n > before.get(k, 0)
        }
        return figures
    finally:
        await probe.aclose()
        proc.terminate()
        await proc.wait()


async def bench_bare(args: Any) -> Figures:
    port = free_port()
    uvicorn = [sys.executable, "-m", "uvicorn", "bench.bare_app:app", "--port", str(port)]
    proc = await spawn([*uvicorn, "--log-level", "warning", "--no-access-log"], {})
    url = f"http://127.0.0.1:{port}"
    try:
        await wait_up(url)
        return await run_load("bare Starlette POST /", proc.pid, url, "/", {}, args)
    finally:
        proc.terminate()
        await proc.wait()


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--pools", type=int, default=10, help="httpx clients sharing the load")
    parser.add_argument("--processes", type=int, default=1, help="client processes")
    parser.add_argument(
        "--client", choices=["httpx", "raw"], default="httpx", help="raw: bench/raw_client.py"
    )
    return parser.parse_args()


async def main() -> None:
    args = arguments()
    external = os.environ.get("BENCH_REDIS_URL")
    server = None
    if external is None:
        server, redis_url = await start_redis_server(Path(tempfile.mkdtemp()), persist=False)
    try:
        bare = await bench_bare(args)
        submit = await bench_submit(external or redis_url, args)
    finally:
        if server is not None:
            await stop_redis_server(server)
    ratio = submit.rate / bare.rate if bare.rate else 0.0
    load = ", ".join(f"{n:.2f}" for n in os.getloadavg())
    client = f"{args.pools} httpx pools" if args.client == "httpx" else "raw connections"
    print(
        f"concurrency {args.concurrency} over {client} in {args.processes} "
        f"client process(es), {args.seconds:g} s each, one uvicorn process each; "
        f"{os.cpu_count()} CPUs, load average {load}"
    )
    print(bare.line())
    print(submit.line())
    print(submit.calls_line())
    print(
        f"submit/bare requests/s: {ratio:.0%} (target >= 40%)   "
        f"submit p99: {submit.pct(0.99):.2f} ms (target <= 25 ms)"
    )
    slower = statistics.median(submit.latencies) / statistics.median(bare.latencies)
    print(f"median latency ratio: {slower:.2f}x")


if __name__ == "__main__":
    asyncio.run(main())
