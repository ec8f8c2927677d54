"""Entries added to a job's audit trail after it ended (webhook deliveries)."""

from __future__ import annotations

from redis.asyncio import Redis

from jobrunner.domain.models import AuditEntry
from jobrunner.store.codec import audit_json
from jobrunner.store.keys import Keys


async def append_audit(redis: Redis, keys: Keys, job_id: str, entry: AuditEntry) -> bool:
    """Add ``entry`` to the job's trail; False when the trail is gone (the record expired).

    RPUSHX, not RPUSH: a trail that expired with its record is not re-created without a TTL.
    """
    length = await redis.rpushx(keys.audit(job_id), audit_json(entry))  # type: ignore[misc]
    return bool(length)
