"""HTTP submit throughput and latency: POST /api/v1/jobs vs a bare Starlette route.

    python bench/http_submit.py [--seconds 10] [--concurrency 50]

Starts a throwaway redis-server (or uses BENCH_REDIS_URL with a fresh key prefix), then one
uvicorn process each for `jobrunner api` (JSON access logs on, to /dev/null) and for a bare
Starlette route returning {} (bench/bare_app.py), both with the same uvicorn defaults. The same
httpx client drives each with CONCURRENCY requests in flight for SECONDS (after a 1 s warm-up)
and prints requests/s, p50/p99 latency, the ratio, and the CPU time each server process spent
per request (a figure other load on the machine disturbs less than latency). Targets: submit
p99 <= 25 ms and >= 40% of the bare route's requests/s. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from jobrunner.embedded import free_port, start_redis_server, stop_redis_server

ROOT = Path(__file__).resolve().parents[1]
ADMIN = "bench-admin-token-0123456789"


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
    server_cpu: float = 0.0  # seconds the server process spent on them

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds

    def pct(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    def line(self) -> str:
        cpu = self.server_cpu / max(self.sent, 1) * 1000
        return (
            f"{self.name:<26} {len(self.latencies):>7} ok {self.errors:>5} errors "
            f"{self.rate:>8.0f} req/s   p50 {self.pct(0.50):6.2f} ms   p99 {self.pct(0.99):6.2f} ms"
            f"   server CPU {cpu:.2f} ms/req"
        )


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


async def drive(
    client: httpx.AsyncClient, path: str, body: dict[str, Any], headers: dict[str, str], args: Any
) -> Figures:
    """CONCURRENCY loops posting until the deadline; a 1 s warm-up is not counted."""
    latencies: list[float] = []
    errors = sent = 0
    start = time.perf_counter()
    measure_from, stop_at = start + 1.0, start + 1.0 + args.seconds

    async def loop() -> None:
        nonlocal errors, sent
        while (now := time.perf_counter()) < stop_at:
            sent += 1
            try:
                reply = await client.post(path, json=body, headers=headers)
                ok = reply.status_code < 300
            except httpx.HTTPError:
                ok = False
            took = time.perf_counter() - now
            if now >= measure_from:
                if ok:
                    latencies.append(took)
                else:
                    errors += 1

    await asyncio.gather(*(loop() for _ in range(args.concurrency)))
    return Figures(path, latencies, errors, args.seconds, sent)


async def measured(pid: int, run: Awaitable[Figures]) -> Figures:
    """``run``'s figures with the CPU time the server process spent meanwhile."""
    before = cpu_seconds(pid)
    figures = await run
    figures.server_cpu = cpu_seconds(pid) - before
    return figures


def client_for(url: str, concurrency: int) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    return httpx.AsyncClient(base_url=url, limits=limits, timeout=30)


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
    try:
        await wait_up(f"{url}/openapi.json")
        async with client_for(url, args.concurrency) as client:
            made = await client.post(
                "/api/v1/admin/keys",
                json={"tenant": "bench", "plan": "pro"},
                headers={"Authorization": f"Bearer {ADMIN}"},
            )
            auth = {"Authorization": f"Bearer {made.json()['api_key']}"}
            body = {"task": "demo.echo", "params": {"n": 1}}
            return await measured(proc.pid, drive(client, "/api/v1/jobs", body, auth, args))
    finally:
        proc.terminate()
        await proc.wait()


async def bench_bare(args: Any) -> Figures:
    port = free_port()
    uvicorn = [sys.executable, "-m", "uvicorn", "bench.bare_app:app", "--port", str(port)]
    proc = await spawn([*uvicorn, "--log-level", "warning", "--no-access-log"], {})
    url = f"http://127.0.0.1:{port}"
    try:
        await wait_up(url)
        async with client_for(url, args.concurrency) as client:
            body = {"task": "demo.echo", "params": {"n": 1}}
            return await measured(proc.pid, drive(client, "/", body, {}, args))
    finally:
        proc.terminate()
        await proc.wait()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=50)
    args = parser.parse_args()
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
    print(f"concurrency {args.concurrency}, {args.seconds:g} s each, one uvicorn process each")
    print(bare.line().replace(f"{'/':<26}", f"{'bare Starlette POST /':<26}"))
    print(submit.line().replace(f"{'/api/v1/jobs':<26}", f"{'POST /api/v1/jobs':<26}"))
    print(
        f"submit/bare requests/s: {ratio:.0%} (target >= 40%)   "
        f"submit p99: {submit.pct(0.99):.2f} ms (target <= 25 ms)"
    )
    slower = statistics.median(submit.latencies) / statistics.median(bare.latencies)
    print(f"median latency ratio: {slower:.2f}x")


if __name__ == "__main__":
    asyncio.run(main())
