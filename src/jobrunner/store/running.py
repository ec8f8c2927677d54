"""Every tenant's running index, rebuilt on read from the tenants' own (lua/running_all.lua).

Starting and ending a job writes only its tenant's running index; the every-tenant one is a
union made when something reads it, so the hot path pays two commands less per job.
"""

from __future__ import annotations

from importlib import resources

from redis.asyncio import Redis

from jobrunner.domain.status import JobStatus
from jobrunner.store.keys import ALL_TENANTS, Keys

_LUA = resources.files("jobrunner.store").joinpath("lua/running_all.lua").read_text()


async def refresh_all_running(redis: Redis, keys: Keys, into: str | None = None) -> int:
    """Rebuild ``idx:*:status:running`` (or write the union to ``into``); the number of
    running jobs."""
    script = redis.register_script(_LUA)
    every = into or keys.status_index(ALL_TENANTS, JobStatus.RUNNING)
    mine = keys.status_index("{tenant}", JobStatus.RUNNING)
    return int(await script(keys=[every, keys.tenants], args=[mine]))
