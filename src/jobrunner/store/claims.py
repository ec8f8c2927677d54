"""Claiming ready jobs from an arq queue: one Lua call per poll instead of ~6 commands a job."""

from __future__ import annotations

from importlib import resources

from redis.asyncio import Redis

from jobrunner.store.keys import arq_in_progress


class Claimer:
    def __init__(self, redis: Redis) -> None:
        source = resources.files("jobrunner.store").joinpath("lua/claim.lua").read_text()
        self._script = redis.register_script(source)

    async def claim(
        self, queue: str, *, wanted: int, now_ms: int, scan: int, lease_ms: int
    ) -> tuple[list[tuple[str, int]], int | None]:
        """Up to ``wanted`` (job id, score) pairs, each now holding arq's in-progress lease,
        and the score (ms) at which the next deferred job becomes due, if any."""
        reply = await self._script(
            keys=[queue], args=[now_ms, wanted, scan, lease_ms, arq_in_progress("")]
        )
        next_due = int(float(reply[0])) if float(reply[0]) >= 0 else None
        flat = reply[1:]
        claimed = [(flat[i].decode(), int(float(flat[i + 1]))) for i in range(0, len(flat), 2)]
        return claimed, next_due
