"""A job named by a short id: the one job whose id starts with it.

Matched with ZSCAN over the index of every tenant's jobs (never a SCAN of the keyspace): an
operator's lookup, its cost proportional to the jobs kept, not to every key.
"""

from __future__ import annotations

import re

from redis.asyncio import Redis

from jobrunner.errors import AmbiguousJobIdError, JobNotFoundError
from jobrunner.store.keys import ALL_TENANTS, Keys

MIN_PREFIX = 8
_FULL_ID = re.compile(r"^[0-9a-f]{32}$")
_PREFIX = re.compile(r"^[0-9a-f]{1,31}$")
_SHOWN = 5  # matches named in an "ambiguous" error


async def resolve_job_id(redis: Redis, keys: Keys, text: str) -> str:
    """The job id ``text`` names: itself, or the one job whose id starts with it."""
    wanted = text.strip().lower()
    if _FULL_ID.fullmatch(wanted):
        return wanted
    if not _PREFIX.fullmatch(wanted):
        raise JobNotFoundError(text)
    if len(wanted) < MIN_PREFIX:
        raise AmbiguousJobIdError(
            f"job id {text!r} is too short: give at least {MIN_PREFIX} characters",
            job_id=text,
            min_length=MIN_PREFIX,
        )
    found = await _ids_starting_with(redis, keys, wanted, limit=_SHOWN)
    if not found:
        raise JobNotFoundError(text)
    if len(found) > 1:
        shown = ", ".join(found) + (", ..." if len(found) == _SHOWN else "")
        raise AmbiguousJobIdError(
            f"job id {text!r} matches more than one job ({shown}); give more characters",
            job_id=text,
            matches=found,
        )
    return found[0]


async def _ids_starting_with(redis: Redis, keys: Keys, prefix: str, *, limit: int) -> list[str]:
    """Up to ``limit`` ids; the whole index is walked either way (uniqueness needs that)."""
    found: list[str] = []
    index = keys.tenant_index(ALL_TENANTS)
    async for member, _ in redis.zscan_iter(index, match=f"{prefix}*", count=1000):
        if len(found) < limit:
            found.append(member.decode())
    return found
