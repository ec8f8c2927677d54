"""The Redis probe: a stall of our own event loop is not taken for a silent Redis, and the
probe stops promptly whatever it was doing."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from structlog.testing import capture_logs

from jobrunner.embedded import free_port
from jobrunner.runtime import JobRunner
from jobrunner.store.connection import create_redis
from jobrunner.store.health import RedisProbe, redis_answers


class StallingClient:
    """The real client, but the process stalls (CPU-bound code) during the first ``stalls``
    pings, past the probe's deadline."""

    def __init__(self, redis: Any, stalls: int) -> None:
        self.redis = redis
        self.stalls = stalls
        self.pings = 0

    async def ping(self) -> Any:
        self.pings += 1
        if self.stalls:
            self.stalls -= 1
            time.sleep(0.4)  # noqa: ASYNC251 (blocking on purpose: the stall under test)
        return await self.redis.ping()


async def test_a_stalled_loop_is_not_a_silent_redis_and_the_probe_stops_at_once(
    runner: JobRunner,
) -> None:
    client = StallingClient(runner.redis, stalls=1)
    probe = RedisProbe(client, interval=0.05, deadline=0.2)  # type: ignore[arg-type]
    with capture_logs() as logs:
        async with probe:
            while client.pings < 4:
                await asyncio.sleep(0.01)
                assert probe.available
            stopping = time.monotonic()
    assert time.monotonic() - stopping < 1.0
    assert not [e for e in logs if e["event"] == "redis does not answer"]


async def test_no_redis_means_no_answer_within_the_deadline() -> None:
    redis = create_redis(f"redis://127.0.0.1:{free_port()}/0", timeout=0.2, default_queue="q")
    try:
        started = time.monotonic()
        assert not await redis_answers(redis, deadline=0.5)
        assert time.monotonic() - started < 1.0
        probe = RedisProbe(redis, deadline=0.5)
        assert not await probe.check()
        assert not probe.available
    finally:
        await redis.aclose(close_connection_pool=True)
