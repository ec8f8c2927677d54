"""What each dashboard page costs with a million jobs in Redis: time and Redis commands.

    python -m bench.dashboard_scale [--jobs 1000000] [--repeat 5]

Starts a throwaway redis-server (no persistence), fills it through JobRunner.enqueue_many with
N jobs over 20 tenants, 4 plans and 3 tasks (deferred a day: no worker runs them), cancels a
few thousand, then requests each page over httpx's ASGI transport, as the operator and as one
tenant. Prints, per page, the median time and the Redis commands it issued (from INFO
commandstats, commands inside Lua scripts included) and how many of them were HGETALLs (job
records loaded, plus the overview's per-minute hashes). Asserts nothing; run it by hand.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import re
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from asgi_lifespan import LifespanManager

from jobrunner.api import create_app
from jobrunner.embedded import start_redis_server, stop_redis_server
from jobrunner.runtime import JobRunner
from jobrunner.settings import Settings
from jobrunner.store.tenants import ApiKeys
from jobrunner.tasks.catalog import build_registry

TOKEN = "bench-admin-token-0123456789"
TENANTS = [f"t{i:02d}" for i in range(20)]
PLANS = ["enterprise", "business", "pro", "free"]
TASKS = ["demo.echo", "demo.sleep", "demo.flaky"]
BATCH = 5000


async def fill(runner: JobRunner, jobs: int, cancelled: int) -> list[str]:
    rng = random.Random(1)
    some: list[str] = []
    started = time.perf_counter()
    for start in range(0, jobs, BATCH):
        requests: list[dict[str, Any]] = [
            {
                "task": rng.choice(TASKS),
                "tenant": rng.choice(TENANTS),
                "plan": rng.choice(PLANS),
                "defer_seconds": 86400,
            }
            for _ in range(min(BATCH, jobs - start))
        ]
        made = await runner.enqueue_many(requests)
        some.extend(r.id for r in rng.sample(made, min(len(made), cancelled * BATCH // jobs + 1)))
    print(f"filled {jobs:,} jobs in {time.perf_counter() - started:.0f} s")
    for job_id in some[:cancelled]:
        await runner.cancel(job_id)
    return some


async def commandstats(runner: JobRunner) -> dict[str, int]:
    info = await runner.redis.info("commandstats")
    return {name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in info.items()}


async def measure(
    client: httpx.AsyncClient, runner: JobRunner, url: str, repeat: int
) -> tuple[float, int, int]:
    times: list[float] = []
    before = await commandstats(runner)
    for _ in range(repeat):
        started = time.perf_counter()
        reply = await client.get(url)
        times.append(time.perf_counter() - started)
        assert reply.status_code == 200, (url, reply.status_code, reply.text[:300])
    after = await commandstats(runner)
    # INFO itself is counted once per snapshot
    calls = sum(after.values()) - sum(before.values()) - 1
    hgetall = after.get("hgetall", 0) - before.get("hgetall", 0)
    return statistics.median(times) * 1000, calls // repeat, hgetall // repeat


async def sign_in(client: httpx.AsyncClient, secret: str) -> None:
    form = await client.get("/dashboard/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert token is not None
    data = {"csrf_token": token.group(1), "secret": secret, "next": ""}
    assert (await client.post("/dashboard/login", data=data)).status_code == 303


async def report(settings: Settings, runner: JobRunner, sample: str, repeat: int) -> None:
    app = create_app(settings, runner=runner)
    key = await tenant_key(runner)
    pages = [
        ("admin", "/dashboard"),
        ("admin", "/dashboard/jobs"),
        ("admin", "/dashboard/jobs?tenant=t07"),
        ("admin", "/dashboard/jobs?status=cancelled"),
        ("admin", "/dashboard/jobs?tenant=t07&status=cancelled&task=demo.sleep&queue=pro"),
        ("admin", "/dashboard/jobs?cursor=0.900000"),
        ("admin", f"/dashboard/jobs/{sample}"),
        ("admin", "/dashboard/tenants"),
        ("tenant", "/dashboard"),
        ("tenant", "/dashboard/jobs?status=queued"),
    ]
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app)
        clients = {
            who: httpx.AsyncClient(transport=transport, base_url="http://bench")
            for who in ("admin", "tenant")
        }
        await sign_in(clients["admin"], TOKEN)
        await sign_in(clients["tenant"], key)
        print(f"{'page':<82} {'ms':>7} {'cmds':>6} {'hgetall':>8}")
        for who, url in pages:
            ms, calls, hgetall = await measure(clients[who], runner, url, repeat)
            print(f"{who + ' ' + url:<82} {ms:7.1f} {calls:6d} {hgetall:8d}")
        for client in clients.values():
            await client.aclose()


async def tenant_key(runner: JobRunner) -> str:
    _, text = await ApiKeys(runner.redis, runner.keys).create("t07", "pro")
    return text


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=1_000_000)
    parser.add_argument("--cancelled", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    server, url = await start_redis_server(Path(tempfile.mkdtemp()), persist=False)
    try:
        settings = Settings(
            _env_file=None,
            redis_url=url,
            key_prefix="bench",
            demo_tasks=True,
            admin_token=TOKEN,
            dashboard_signin_rate_per_s=100,
        )
        async with JobRunner(settings, build_registry(settings)) as runner:
            sample = (await fill(runner, args.jobs, args.cancelled))[0]
            memory = (await runner.redis.info("memory"))["used_memory_human"]
            print(f"redis used_memory: {memory}")
            await report(settings, runner, sample, args.repeat)
    finally:
        await stop_redis_server(server)


if __name__ == "__main__":
    asyncio.run(main())
