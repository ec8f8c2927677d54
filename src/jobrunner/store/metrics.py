"""Cluster-wide metrics kept in Redis, so every API process reports the same numbers.

Counts of submitted and completed jobs are incremented inside the Lua scripts that create and
finish jobs (no extra round trip). Attempt durations are observed in worker memory and added
here by the worker's heartbeat (``add_durations`` joins the heartbeat's pipeline).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from jobrunner.domain.durations import TaskDurations, bucket_label
from jobrunner.store.keys import Keys
from jobrunner.store.queues import QueueStats, queue_stats


@dataclass(frozen=True)
class MetricsSnapshot:
    """What ``/metrics`` renders, read in a few round trips."""

    submitted: dict[tuple[str, str], int]  # (queue, task) -> jobs
    completed: dict[tuple[str, str], int]  # (queue, terminal status) -> jobs
    durations: dict[str, TaskDurations]  # task -> attempt durations
    queues: list[QueueStats]
    workers: list[dict[str, Any]] = field(default_factory=list)
    webhooks_pending: int = 0  # ended jobs whose delivery job is not enqueued yet (the outbox)


def add_durations(pipe: Pipeline, keys: Keys, drained: Mapping[str, TaskDurations]) -> None:
    """Queue the increments for ``drained`` observations on ``pipe``."""
    for task, entry in drained.items():
        for upper, count in entry.buckets.items():
            pipe.hincrby(keys.duration_counts, f"{task}\t{bucket_label(upper)}", count)
        pipe.hincrbyfloat(keys.duration_counts, f"{task}\tsum", entry.total_seconds)
        pipe.hincrby(keys.duration_counts, f"{task}\tcount", entry.count)


async def read_metrics(
    redis: Redis,
    keys: Keys,
    plans: Sequence[str],
    workers: Sequence[Mapping[str, Any]],
    now_ms: float,
) -> MetricsSnapshot:
    async with redis.pipeline(transaction=False) as pipe:
        pipe.hgetall(keys.submitted_counts)
        pipe.hgetall(keys.completed_counts)
        pipe.hgetall(keys.duration_counts)
        pipe.zcard(keys.callbacks_due)
        submitted, completed, durations, pending = await pipe.execute()
    return MetricsSnapshot(
        submitted=_pairs(submitted),
        completed=_pairs(completed),
        durations=_durations(durations),
        queues=await queue_stats(redis, keys, plans, workers, now_ms),
        workers=[dict(w) for w in workers],
        webhooks_pending=int(pending),
    )


def _pairs(raw: Mapping[bytes, bytes]) -> dict[tuple[str, str], int]:
    out: dict[tuple[str, str], int] = {}
    for name, value in raw.items():
        first, _, second = name.decode().partition("\t")
        out[(first, second)] = int(value)
    return out


def _durations(raw: Mapping[bytes, bytes]) -> dict[str, TaskDurations]:
    out: dict[str, TaskDurations] = {}
    for name, value in raw.items():
        task, _, part = name.decode().rpartition("\t")
        entry = out.setdefault(task, TaskDurations())
        if part == "sum":
            entry.total_seconds = float(value)
        elif part == "count":
            entry.count = int(value)
        else:
            entry.buckets[float(part)] = int(value)  # float("+Inf") is inf
    return out
