"""Every tenant's running index, rebuilt on read from the tenants' own (lua/running_all.lua).

Starting and ending a job writes only its tenant's running index; the every-tenant one is a
union made when something reads it, so the hot path pays two commands less per job. Readers
ask ``refresh_if_read`` with the index keys they are about to read.
"""

from __future__ import annotations

from collections.abc import Iterable
from importlib import resources

from redis.asyncio import Redis

from jobrunner.domain.status import JobStatus
from jobrunner.store.keys import ALL_TENANTS, Keys

_LUA = resources.files("jobrunner.store").joinpath("lua/running_all.lua").read_text()


class RunningIndex:
    def __init__(self, redis: Redis, keys: Keys) -> None:
        self.keys = keys
        self.key = keys.status_index(ALL_TENANTS, JobStatus.RUNNING)
        self._script = redis.register_script(_LUA)

    async def refresh(self, into: str | None = None) -> int:
        """Rebuild the every-tenant running index (or write the union to ``into``); the
        number of running jobs."""
        mine = self.keys.status_index("{tenant}", JobStatus.RUNNING)
        return int(await self._script(keys=[into or self.key, self.keys.tenants], args=[mine]))

    async def refresh_if_read(self, index_keys: Iterable[str]) -> None:
        """Rebuild it first when a read is about to use it."""
        if self.key in index_keys:
            await self.refresh()
