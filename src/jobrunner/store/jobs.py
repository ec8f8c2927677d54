"""Durable job records, their indices, audit trail and results; every multi-key change is Lua."""

from __future__ import annotations

import builtins
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from redis.asyncio import Redis

from jobrunner.domain.models import AuditEntry, JobPage, JobRecord, SkippedRecord
from jobrunner.domain.status import JobStatus
from jobrunner.errors import JobNotFoundError, RecordCorruptError
from jobrunner.settings import Settings
from jobrunner.store.codec import (
    audit_json,
    decode_audit,
    decode_record,
    encode_fields,
)
from jobrunner.store.creation import ArqEnqueue, JobCreator, NewJob
from jobrunner.store.keys import Keys, arq_in_progress, arq_result, arq_retry
from jobrunner.store.running import RunningIndex
from jobrunner.store.scripts import layout_args, record_script

_JOB_ID = re.compile(r"^[0-9a-f]{32}$")


def valid_job_id(job_id: str) -> bool:
    return bool(_JOB_ID.fullmatch(job_id))


@dataclass(frozen=True)
class Transition:
    """A status change: where to and what else changes with it. Whether the current status
    allows it is the lifecycle table's call (domain/status.py), rendered into the Lua."""

    target: JobStatus
    fields: Mapping[str, Any]
    audit: AuditEntry
    increment: str | None = None
    increment_when: JobStatus | None = None
    result_json: str | None = None


class JobStore:
    """Records, indices, audit and results under one key prefix."""

    def __init__(
        self, redis: Redis, keys: Keys, *, record_ttl: int, result_ttl: int, idempotency_ttl: int
    ) -> None:
        self.redis = redis
        self.keys = keys
        self.record_ttl = record_ttl
        self.result_ttl = result_ttl
        self.idempotency_ttl = idempotency_ttl
        self.creator = JobCreator(redis, keys, idempotency_ttl=idempotency_ttl)
        self.running = RunningIndex(redis, keys)
        self._transition = record_script(redis, "transition")
        self._cancel = record_script(redis, "request_cancel")
        self._layout = layout_args(keys, record_ttl=record_ttl, result_ttl=result_ttl)

    @classmethod
    def of(cls, redis: Redis, settings: Settings) -> JobStore:
        """The store under ``settings``' key prefix and retention."""
        return cls(
            redis,
            Keys(settings.key_prefix),
            record_ttl=settings.record_ttl_seconds,
            result_ttl=settings.result_ttl_seconds,
            idempotency_ttl=settings.idempotency_ttl_seconds,
        )

    # -- creation ---------------------------------------------------------------------------

    async def create_many(
        self, jobs: Sequence[tuple[NewJob, ArqEnqueue]], wake_queues: Sequence[str]
    ) -> list[tuple[str, bool]]:
        """Create records and their arq entries in one pipelined round trip."""
        return await self.creator.create_many(jobs, wake_queues)

    # -- reads ------------------------------------------------------------------------------

    async def get(self, job_id: str) -> JobRecord:
        if not valid_job_id(job_id):
            raise JobNotFoundError(job_id)
        raw = await self.redis.hgetall(self.keys.job(job_id))  # type: ignore[misc]
        if not raw:
            raise JobNotFoundError(job_id)
        return decode_record(raw, job_id)

    async def audit(self, job_id: str) -> list[AuditEntry]:
        if not valid_job_id(job_id) or not await self.redis.exists(self.keys.job(job_id)):
            raise JobNotFoundError(job_id)
        entries = await self.redis.lrange(self.keys.audit(job_id), 0, -1)  # type: ignore[misc]
        return decode_audit(entries)

    async def idempotent_job_id(self, tenant: str, key: str) -> str | None:
        """The job an idempotency key already names, if any (so a replay is not new work)."""
        raw = await self.redis.get(self.keys.idempotency(tenant, key))
        return None if raw is None else str(json.loads(raw)["job_id"])

    async def get_many(self, ids: builtins.list[str]) -> builtins.list[JobRecord]:
        """Records in the order given; expired or unreadable ones are left out."""
        records, _ = await self._load_many(ids)
        return records

    async def result_json(self, job_id: str) -> str | None:
        """Our result key, else the value of arq's result entry (a success's only copy)."""
        ours, arqs = await self.redis.mget(self.keys.result(job_id), arq_result(job_id))
        if ours is not None:
            return bytes(ours).decode()
        if arqs is None:
            return None
        entry = json.loads(arqs)  # arq's result entry in our JSON serializer's format
        if entry.get("s") is not True or "r" not in entry:
            return None
        return json.dumps(entry["r"], separators=(",", ":"), ensure_ascii=False)

    async def list(
        self,
        tenant: str,
        *,
        status: JobStatus | None = None,
        task: str | None = None,
        offset: int = 0,
        limit: int = 50,
    ) -> JobPage:
        """Newest first, from the per-tenant indices (never a SCAN)."""
        k = self.keys
        index_keys = [k.status_index(tenant, status)] if status else []
        index_keys += [k.task_index(tenant, task)] if task else []
        await self.running.refresh_if_read(index_keys)
        if len(index_keys) < 2:
            key = index_keys[0] if index_keys else k.tenant_index(tenant)
            total = await self.redis.zcard(key)
            ids = await self.redis.zrevrange(key, offset, offset + limit - 1)
        else:
            # Two filters: intersect the two indices (both hold only this tenant's ids).
            both = await self.redis.zinter(index_keys, aggregate="MAX", withscores=True)
            both.sort(key=lambda pair: pair[1], reverse=True)
            total = len(both)
            ids = [member for member, _ in both[offset : offset + limit]]
        records, skipped = await self._load_many([i.decode() for i in ids])
        return JobPage(items=records, total=total, offset=offset, limit=limit, skipped=skipped)

    async def _load_many(
        self, ids: builtins.list[str]
    ) -> tuple[builtins.list[JobRecord], builtins.list[SkippedRecord]]:
        """The records of ``ids`` that exist, and those that exist but do not decode."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for job_id in ids:
                pipe.hgetall(self.keys.job(job_id))
            raws = await pipe.execute()
        records: builtins.list[JobRecord] = []
        skipped: builtins.list[SkippedRecord] = []
        for job_id, raw in zip(ids, raws, strict=True):
            if not raw:  # the record expired; its index entries are pruned by the cleanup cron
                continue
            try:
                records.append(decode_record(raw, job_id))
            except RecordCorruptError as exc:  # one bad record must not hide the others
                skipped.append(SkippedRecord(id=job_id, code=exc.code, message=exc.message))
        return records, skipped

    # -- changes ----------------------------------------------------------------------------

    async def transition(self, job_id: str, change: Transition, now_ms: float) -> bool:
        """Apply ``change`` if the lifecycle table allows it from the current status; whether
        it did (the script returns only that, not the record)."""
        keys, args = self.transition_call(job_id, change, now_ms)
        reply = await self._transition(keys=keys, args=args)
        if reply[0] == -2:
            raise JobNotFoundError(job_id)
        return bool(reply[0] == 1)

    def transition_call(
        self, job_id: str, change: Transition, now_ms: float
    ) -> tuple[builtins.list[str], builtins.list[str]]:
        """KEYS and ARGV of transition.lua for ``change`` (reconcile_running.lua runs it too)."""
        return [], [
            *self._layout,
            job_id,
            change.target.value,
            json.dumps(encode_fields(change.fields)),
            audit_json(change.audit),
            repr(now_ms),
            change.increment or "",
            change.increment_when.value if change.increment_when else "",
            change.result_json or "",
        ]

    async def request_cancel(self, job_id: str, now_ms: float, by: str) -> tuple[int, str]:
        """(1, 'cancelled') for a waiting job, (2, 'requested') for a running one, (-1, status)."""
        if not valid_job_id(job_id):
            raise JobNotFoundError(job_id)
        at = datetime.fromtimestamp(now_ms / 1000, tz=UTC)
        fields = {"finished_at": now_ms, "cancel_requested": True, "next_attempt_at": None}
        cancelled = AuditEntry(at=at, event="cancelled", status=JobStatus.CANCELLED, message=by)
        requested = AuditEntry(at=at, event="cancel_requested", message=by)
        reply = await self._cancel(
            keys=[],
            args=[
                *self._layout,
                job_id,
                repr(now_ms),
                json.dumps(encode_fields(fields)),
                audit_json(cancelled),
                audit_json(requested),
                self.keys.wake,
            ],
        )
        if reply[0] == -2:
            raise JobNotFoundError(job_id)
        return int(reply[0]), reply[1].decode() if isinstance(reply[1], bytes) else str(reply[1])

    async def adopt(self, job: NewJob, arq: ArqEnqueue, attempt: int) -> None:
        """Write the record of a job arq already holds (a plain arq client enqueued it), then
        let it go back to its queue due now: the claim's lease released, its try given back,
        the queue's workers woken. The next claim starts it as any other job."""
        await self.creator.create_many([(job, arq)], [])
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(arq_in_progress(job.job_id))
            if attempt > 0:
                pipe.decr(arq_retry(job.job_id))
            pipe.publish(self.keys.wake, arq.queue)
            await pipe.execute()

    async def set_progress(
        self,
        job_id: str,
        progress: float,
        message: str | None,
        now_ms: float,
        milestone: AuditEntry | None,
        event_json: str,
    ) -> None:
        """Cheap progress write: one pipelined round trip, no Lua."""
        k = self.keys
        fields: dict[str, str] = {"progress": repr(progress), "updated_at": repr(now_ms)}
        if message is not None:
            fields["message"] = message
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hset(k.job(job_id), mapping=fields)
            if milestone is not None:
                pipe.rpush(k.audit(job_id), audit_json(milestone))
            pipe.publish(k.events(job_id), event_json)
            await pipe.execute()
