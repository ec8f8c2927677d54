"""Baseline worker for bench/throughput.py: plain arq, defaults except the queue and max_jobs.

Run by the bench as ``arq bench.raw_arq_worker.WorkerSettings``; reads BENCH_* variables.
"""

from __future__ import annotations

import os
from typing import Any

from arq.connections import RedisSettings
from arq.worker import func


async def echo(ctx: dict[str, Any], **params: Any) -> dict[str, Any]:
    return params


class WorkerSettings:
    functions = [func(echo, name="demo.echo")]
    queue_name = os.environ.get("BENCH_QUEUE", "bench:raw")
    max_jobs = int(os.environ.get("BENCH_CONCURRENCY", "50"))
    redis_settings = RedisSettings.from_dsn(
        os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
    )
