"""Per-minute figures in Redis: one small hash per minute, written by worker heartbeats
(``add_minutes`` joins the heartbeat's MULTI/EXEC) and kept two hours; read by the dashboard.
"""

from __future__ import annotations

from collections.abc import Mapping

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from jobrunner.domain.minutes import MinuteFigures
from jobrunner.store.keys import Keys

__all__ = ["KEEP_SECONDS", "MinuteStats", "add_minutes"]

KEEP_SECONDS = 2 * 3600
_RUN = "run"


def add_minutes(pipe: Pipeline, keys: Keys, drained: Mapping[int, MinuteFigures]) -> None:
    """Queue the increments for ``drained`` on ``pipe``."""
    for minute, figures in drained.items():
        key = keys.minute_figures(minute)
        for (plan, status), n in figures.ended.items():
            pipe.hincrby(key, f"{plan}\t{status}", n)
        for bucket, n in figures.runs.items():
            pipe.hincrby(key, f"{_RUN}\t{bucket}", n)
        pipe.expire(key, KEEP_SECONDS)


def _decode(raw: Mapping[bytes, bytes]) -> MinuteFigures:
    figures = MinuteFigures()
    for name, value in raw.items():
        first, _, second = name.decode().partition("\t")
        if first == _RUN:
            figures.runs[int(second)] = int(value)
        else:
            figures.ended[(first, second)] = int(value)
    return figures


class MinuteStats:
    def __init__(self, redis: Redis, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys

    async def read(self, last_minute: int, count: int) -> dict[int, MinuteFigures]:
        """The ``count`` minutes up to ``last_minute`` (oldest first; empty ones included),
        in one round trip."""
        minutes = list(range(last_minute - count + 1, last_minute + 1))
        async with self.redis.pipeline(transaction=False) as pipe:
            for minute in minutes:
                pipe.hgetall(self.keys.minute_figures(minute))
            raws = await pipe.execute()
        return {minute: _decode(raw) for minute, raw in zip(minutes, raws, strict=True)}
