"""Creating jobs: each job's record, indices, idempotency key and arq entry, all or nothing,
many jobs per Lua call (create_jobs.lua gathers the batch's index writes into one command per
key).

A batch goes to Redis as one pipeline of EVALSHA, one per chunk of jobs (no SCRIPT EXISTS
round trip first, as redis-py's ``Script`` objects make a pipeline do); a script Redis has
forgotten (a restart, a SCRIPT FLUSH) is loaded again and only the calls it refused are sent
again. A chunk whose call failed (and undid itself) is sent again one job per call, so each job
gets its own outcome.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import NoScriptError

from jobrunner.domain.models import AuditEntry
from jobrunner.domain.status import JobStatus
from jobrunner.errors import IdempotencyConflictError
from jobrunner.store.codec import audit_json, encode_fields
from jobrunner.store.keys import ALL_TENANTS, Keys, arq_job
from jobrunner.store.scripts import lua_source, with_writes

_SCRIPT = with_writes(lua_source("create_jobs"))
_CHUNK = 200  # jobs per Lua call: bounds how long one call holds Redis


@dataclass(frozen=True)
class NewJob:
    """A record to create, with what ``create`` needs beyond the record's own fields."""

    job_id: str
    tenant: str
    task: str
    fields: Mapping[str, Any]
    created_ms: float
    audit: AuditEntry
    fingerprint: str = ""  # what a repeated idempotency key is compared by ('' without a key)
    idempotency_key: str | None = None
    expires_ms: float | None = None


@dataclass(frozen=True)
class ArqEnqueue:
    """arq's own job entry (its key and queue member), written beside the record."""

    queue: str
    payload: bytes
    ttl_ms: int
    score: int


Created = tuple[str, bool]  # (job id, True) for a new job; (earlier id, False) for a replay


class JobCreator:
    """Runs create_jobs.lua for batches of jobs, one pipelined round trip per batch."""

    def __init__(self, redis: Redis, keys: Keys, *, idempotency_ttl: int) -> None:
        self.redis = redis
        self.keys = keys
        self.idempotency_ttl = idempotency_ttl
        self._sha = redis.register_script(_SCRIPT).sha
        # tenants this creator saw in the tenants set: the set only grows, so their SADD is skipped
        self._known_tenants: set[str] = set()

    async def create_many(
        self, jobs: Sequence[tuple[NewJob, ArqEnqueue]], wake_queues: Sequence[str]
    ) -> list[Created]:
        """All or raise the first error (each job's own writes are still all or nothing)."""
        outcomes = await self.create_batch(jobs, wake_queues)
        created: list[Created] = []
        for outcome in outcomes:
            if isinstance(outcome, Exception):
                raise outcome
            created.append(outcome)
        return created

    async def create_batch(
        self, jobs: Sequence[tuple[NewJob, ArqEnqueue]], wake_queues: Sequence[str]
    ) -> list[Created | Exception]:
        """Each job's outcome or its own error, in order; a failure of the connection raises.

        ``wake_queues`` are announced on the wake channel after the jobs are written."""
        calls = [self._call(job, arq) for job, arq in jobs]
        chunks = [list(range(i, min(i + _CHUNK, len(calls)))) for i in range(0, len(calls), _CHUNK)]
        replies: list[Any] = [None] * len(calls)
        await self._send(calls, chunks, replies, wake_queues)
        outcomes = [_outcome(reply, job) for (job, _), reply in zip(jobs, replies, strict=True)]
        for (job, _), outcome in zip(jobs, outcomes, strict=True):
            if not isinstance(outcome, Exception) and outcome[1]:
                self._known_tenants.add(job.tenant)
        return outcomes

    async def _send(
        self,
        calls: list[dict[str, Any]],
        chunks: list[list[int]],
        replies: list[Any],
        wake: Sequence[str],
    ) -> None:
        """Fill ``replies`` (per job: its [code, id] or the error of its call)."""
        batches = [[calls[i] for i in chunk] for chunk in chunks]
        answers = await self._run(batches, wake)
        forgotten = [n for n, answer in enumerate(answers) if isinstance(answer, NoScriptError)]
        if forgotten:  # a restarted Redis, a SCRIPT FLUSH: only the refused calls go again
            await self.redis.script_load(_SCRIPT)
            again = await self._run([batches[n] for n in forgotten], wake)
            for n, answer in zip(forgotten, again, strict=True):
                answers[n] = answer
        alone: list[list[int]] = []
        for chunk, answer in zip(chunks, answers, strict=True):
            if isinstance(answer, Exception) and len(chunk) > 1:
                alone += [[i] for i in chunk]  # undone as a whole: each job on its own now
            else:
                for i, reply in zip(chunk, _per_job(answer, len(chunk)), strict=True):
                    replies[i] = reply
        if alone:
            await self._send(calls, alone, replies, ())

    async def _run(self, batches: list[list[dict[str, Any]]], wake: Sequence[str]) -> list[Any]:
        async with self.redis.pipeline(transaction=False) as pipe:
            for batch in batches:
                argv = json.dumps(batch, ensure_ascii=False, separators=(",", ":"))
                pipe.execute_command("EVALSHA", self._sha, 0, argv)
            for queue in wake:
                pipe.publish(self.keys.wake, queue)
            replies: list[Any] = await pipe.execute(raise_on_error=False)
        return replies[: len(batches)]

    def _call(self, job: NewJob, arq: ArqEnqueue) -> dict[str, Any]:
        """One job's object in create_jobs.lua's ARGV[1]: its values, and its keys as ``k``."""
        k = self.keys
        idem = k.idempotency(job.tenant, job.idempotency_key) if job.idempotency_key else ""
        return {
            "id": job.job_id,
            "fields": {n: v for n, v in encode_fields(job.fields).items() if v is not None},
            "created": repr(job.created_ms),
            "tenant": job.tenant,
            "fingerprint": job.fingerprint,
            "idem_ttl": str(self.idempotency_ttl),
            "expires": "" if job.expires_ms is None else repr(job.expires_ms),
            "audit": audit_json(job.audit),
            "payload": arq.payload.decode(),
            "payload_ttl": str(arq.ttl_ms),
            "score": str(arq.score),
            "tenant_known": "1" if job.tenant in self._known_tenants else "",
            "k": [
                k.job(job.job_id),
                k.audit(job.job_id),
                k.tenant_index(job.tenant),
                k.status_index(job.tenant, JobStatus.QUEUED),
                k.task_index(job.tenant, job.task),
                k.tenants,
                idem,
                k.expiring,
                arq_job(job.job_id),
                arq.queue,
                k.submitted_counts,
                k.tenant_index(ALL_TENANTS),
                k.status_index(ALL_TENANTS, JobStatus.QUEUED),
                k.task_index(ALL_TENANTS, job.task),
                k.plan_index(str(job.fields["plan"])),
            ],
        }


def _per_job(answer: Any, count: int) -> list[Any]:
    """A call's answer split per job: its list of [code, id], or its error for each."""
    if isinstance(answer, Exception):
        return [answer] * count
    return list(answer)


def _outcome(reply: Any, job: NewJob) -> Created | Exception:
    if isinstance(reply, Exception):
        return reply
    code, job_id = int(reply[0]), bytes(reply[1]).decode()
    if code == -1:
        return IdempotencyConflictError(
            f"idempotency key {job.idempotency_key!r} was used for a different payload",
            idempotency_key=job.idempotency_key,
            job_id=job_id,
        )
    return job_id, code == 1
