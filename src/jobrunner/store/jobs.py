"""Durable job records, their indices, audit trail and results; every multi-key change is Lua."""

from __future__ import annotations

import builtins
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from typing import Any

from redis.asyncio import Redis

from jobrunner.domain.models import AuditEntry, JobPage, JobRecord, SkippedRecord
from jobrunner.domain.status import TERMINAL, WAITING, JobStatus
from jobrunner.errors import JobNotFoundError, RecordCorruptError
from jobrunner.store.codec import (
    audit_json,
    decode_audit,
    decode_record,
    encode_fields,
    pairs_to_hash,
)
from jobrunner.store.creation import ArqEnqueue, JobCreator, NewJob
from jobrunner.store.keys import ALL_TENANTS, ARQ_ABORT, Keys, arq_job

_JOB_ID = re.compile(r"^[0-9a-f]{32}$")


def _lua(name: str) -> str:
    return resources.files("jobrunner.store").joinpath(f"lua/{name}.lua").read_text()


def valid_job_id(job_id: str) -> bool:
    return bool(_JOB_ID.fullmatch(job_id))


@dataclass(frozen=True)
class Transition:
    """A status change: where to, from which statuses, and what else changes with it."""

    target: JobStatus
    allowed_from: frozenset[JobStatus]
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
        self._transition = redis.register_script(_lua("transition"))
        self._cancel = redis.register_script(_lua("request_cancel"))

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
        raw = await self.redis.get(self.keys.result(job_id))
        return None if raw is None else bytes(raw).decode()

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

    async def transition(self, job_id: str, change: Transition, now_ms: float) -> JobRecord | None:
        """Apply ``change`` if the current status allows it; None when it does not."""
        keys, args = self.transition_call(job_id, change, now_ms)
        reply = await self._transition(keys=keys, args=args)
        if reply[0] == -2:
            raise JobNotFoundError(job_id)
        if reply[0] == -1:
            return None
        return decode_record(pairs_to_hash(reply[1]), job_id)

    def transition_call(
        self, job_id: str, change: Transition, now_ms: float
    ) -> tuple[builtins.list[str], builtins.list[str]]:
        """KEYS and ARGV of transition.lua for ``change`` (reconcile.lua runs it too)."""
        k = self.keys
        terminal = change.target in TERMINAL
        fields = encode_fields(change.fields)
        return (
            [
                k.job(job_id),
                k.audit(job_id),
                k.events(job_id),
                k.finished,
                k.expiring,
                k.result(job_id),
                k.completed_counts,
            ],
            [
                change.target.value,
                ",".join(s.value for s in change.allowed_from),
                json.dumps(fields),
                audit_json(change.audit),
                repr(now_ms),
                "1" if terminal else "0",
                str(self.record_ttl),
                k.status_index("{tenant}", "{status}"),
                job_id,
                change.increment or "",
                change.result_json or "",
                str(self.result_ttl),
                change.increment_when.value if change.increment_when else "",
                k.status_index(ALL_TENANTS, "{status}"),
            ],
        )

    async def request_cancel(self, job_id: str, now_ms: float, by: str) -> tuple[int, str]:
        """(1, 'cancelled') for a waiting job, (2, 'requested') for a running one, (-1, status)."""
        if not valid_job_id(job_id):
            raise JobNotFoundError(job_id)
        at = datetime.fromtimestamp(now_ms / 1000, tz=UTC)
        cancelled = Transition(
            target=JobStatus.CANCELLED,
            allowed_from=WAITING,
            fields={"finished_at": now_ms, "cancel_requested": True, "next_attempt_at": None},
            audit=AuditEntry(at=at, event="cancelled", status=JobStatus.CANCELLED, message=by),
        )
        record = await self.transition(job_id, cancelled, now_ms)
        if record is not None:
            # Take it out of arq too; a worker that claimed it meanwhile is refused at start.
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.zrem(record.queue, job_id)
                pipe.delete(arq_job(job_id))
                await pipe.execute()
            return 1, JobStatus.CANCELLED.value
        k = self.keys
        requested = AuditEntry(at=at, event="cancel_requested", message=by)
        reply = await self._cancel(
            keys=[k.job(job_id), k.audit(job_id), ARQ_ABORT, k.wake],
            args=[job_id, repr(now_ms), audit_json(requested)],
        )
        if reply[0] == -2:
            raise JobNotFoundError(job_id)
        return int(reply[0]), reply[1].decode() if isinstance(reply[1], bytes) else str(reply[1])

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
