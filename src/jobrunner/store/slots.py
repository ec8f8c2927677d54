"""Once per scheduled slot: every worker runs the maintenance cron, the first to claim a slot
does the work (SET NX on a key naming the job and the slot's time, kept a while)."""

from __future__ import annotations

from redis.asyncio import Redis

from jobrunner.store.keys import Keys

__all__ = ["claim_slot"]


async def claim_slot(
    redis: Redis, keys: Keys, name: str, slot_ms: int, *, owner: str, keep_seconds: int
) -> bool:
    """True for the one caller that claims ``name`` at ``slot_ms``; False for every other."""
    claimed = await redis.set(keys.maintenance_slot(name, slot_ms), owner, nx=True, ex=keep_seconds)
    return bool(claimed)
