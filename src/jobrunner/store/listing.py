"""Pages of jobs for any mix of filters (tenant, status, task, plan), from the indices.

Every filter names a sorted set of job ids scored by creation time: a tenant's own indices
(``idx:<tenant>:all|status:<s>|task:<t>``), the same over every tenant (``idx:*:...``) and one
per plan. One set is paged by rank, with an exact total. Several are never intersected whole
(at a million jobs that reads them all): the smallest is walked newest first and an id is kept
when every other set holds it (``walk_index.lua``), looking at a bounded number of entries per
call; the cursor says which set is walked and where to go on. No page loads more than its own
records.
"""

from __future__ import annotations

import builtins
import re
from dataclasses import dataclass
from importlib import resources

from redis.asyncio import Redis

from jobrunner.domain.models import JobRecord
from jobrunner.domain.status import JobStatus
from jobrunner.errors import InvalidInputError
from jobrunner.store.jobs import JobStore
from jobrunner.store.keys import ALL_TENANTS, Keys

__all__ = ["JobFilter", "JobIndex", "JobsPage"]

_CURSOR = re.compile(r"^(\d)\.(\d{1,12})$")


@dataclass(frozen=True)
class JobFilter:
    """What a page shows; ``tenant=None`` means every tenant (for operators only)."""

    tenant: str | None = None
    status: JobStatus | None = None
    task: str | None = None
    plan: str | None = None


@dataclass(frozen=True)
class JobsPage:
    items: builtins.list[JobRecord]
    total: int | None  # exact with one filter set; None when sets are intersected
    first: int  # rank of the first entry looked at (what "newer" pages go back from)
    cursor: str | None  # where the next (older) page starts; None: no more
    examined: int  # index entries looked at for this page


def _cursor(driver: int, rank: int) -> str:
    return f"{driver}.{rank}"


class JobIndex:
    """Reads job pages from the indices; writes nothing."""

    def __init__(self, store: JobStore, *, walk_budget: int = 5000) -> None:
        self.store = store
        self.redis: Redis = store.redis
        self.keys: Keys = store.keys
        self.walk_budget = walk_budget
        lua = resources.files("jobrunner.store").joinpath("lua/walk_index.lua").read_text()
        self._walk = self.redis.register_script(lua)

    def index_keys(self, f: JobFilter) -> builtins.list[str]:
        """The sets a job must be in to match ``f`` (the tenant's own sets carry its scope)."""
        k, owner = self.keys, f.tenant or ALL_TENANTS
        found = [k.status_index(owner, f.status)] if f.status else []
        found += [k.task_index(owner, f.task)] if f.task else []
        found += [k.plan_index(f.plan)] if f.plan else []
        if not found or (f.tenant and not (f.status or f.task)):
            found.insert(0, k.tenant_index(owner))
        return found

    async def page(self, f: JobFilter, cursor: str | None, limit: int) -> JobsPage:
        """Newest first from ``cursor`` (None: the newest); at most ``limit`` records."""
        sets = self.index_keys(f)
        await self.store.running.refresh_if_read(sets)
        async with self.redis.pipeline(transaction=False) as pipe:
            for key in sets:
                pipe.zcard(key)
            sizes = [int(n) for n in await pipe.execute()]
        driver, rank = self._parse(cursor, sizes)
        if len(sets) == 1:
            ids = await self.redis.zrevrange(sets[0], rank, rank + limit - 1)
            after = rank + len(ids)
            more = _cursor(0, after) if after < sizes[0] else None
            total: int | None = sizes[0]
            examined = len(ids)
        else:
            others = [key for i, key in enumerate(sets) if i != driver]
            reply = await self._walk(
                keys=[sets[driver], *others], args=[rank, limit, self.walk_budget]
            )
            after, examined, ids = int(reply[0]), int(reply[1]), reply[2:]
            more = _cursor(driver, after) if after >= 0 else None
            total = None
        records = await self.store.get_many([bytes(i).decode() for i in ids])
        if f.tenant is not None:  # the sets are the tenant's own; this only guards them
            records = [r for r in records if r.tenant == f.tenant]
        return JobsPage(records, total, rank, more, examined)

    def _parse(self, cursor: str | None, sizes: builtins.list[int]) -> tuple[int, int]:
        """(which set to walk, from which rank): the smallest set unless the cursor says."""
        if not cursor:
            return min(range(len(sizes)), key=lambda i: sizes[i]), 0
        match = _CURSOR.fullmatch(cursor)
        if match is None or int(match.group(1)) >= len(sizes):
            raise InvalidInputError(f"not a page cursor: {cursor[:40]!r}", cursor=cursor[:40])
        return int(match.group(1)), int(match.group(2))

    async def tenants(self) -> builtins.list[str]:
        """Every tenant that has submitted a job, by name."""
        members = await self.redis.smembers(self.keys.tenants)  # type: ignore[misc]
        return sorted(bytes(m).decode() for m in members)

    async def counts_by_status(self, tenant: str | None) -> dict[JobStatus, int]:
        """How many jobs (of a tenant, or of all) are in each status: one ZCARD each."""
        owner = tenant or ALL_TENANTS
        if owner == ALL_TENANTS:
            await self.store.running.refresh()
        async with self.redis.pipeline(transaction=False) as pipe:
            for status in JobStatus:
                pipe.zcard(self.keys.status_index(owner, status))
            counts = await pipe.execute()
        return {status: int(n) for status, n in zip(JobStatus, counts, strict=True)}
