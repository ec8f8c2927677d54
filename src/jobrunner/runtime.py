"""JobRunner: the library's front door (enqueue, get, list, cancel, watch, wait).

Use it as an async context manager. Without a Redis URL it starts an embedded redis-server.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import json
import time
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

from arq.connections import ArqRedis
from pydantic import BaseModel
from redis.exceptions import RedisError

from jobrunner.admission import Admission, Admitted
from jobrunner.callbacks import Callbacks
from jobrunner.domain.models import AuditEntry, JobEvent, JobPage, JobRecord
from jobrunner.domain.status import RETRYABLE, JobStatus
from jobrunner.embedded import embedded_redis
from jobrunner.errors import (
    InvalidInputError,
    JobNotCancellableError,
    JobNotFoundError,
    JobNotRetryableError,
    RedisUnavailableError,
    WaitTimeoutError,
)
from jobrunner.registry import Registry, Task
from jobrunner.serving import UnservedQueues
from jobrunner.settings import Settings
from jobrunner.store.blob_backends import blob_store
from jobrunner.store.blobs import BlobStore
from jobrunner.store.coalesce import Coalescer
from jobrunner.store.codec import decode_record
from jobrunner.store.connection import connect, unavailable_reason
from jobrunner.store.creation import Created
from jobrunner.store.events import EventFeed
from jobrunner.store.jobs import JobStore, valid_job_id
from jobrunner.store.keys import ALL_TENANTS, Keys
from jobrunner.store.lookup import resolve_job_id
from jobrunner.store.metrics import MetricsSnapshot, read_metrics
from jobrunner.store.queues import QueueStats, queue_stats
from jobrunner.store.workers import WorkerRegistry
from jobrunner.submission import EnqueueRequest, parse_request


def _now_ms() -> float:
    return time.time() * 1000


@contextlib.asynccontextmanager
async def redis_errors(operation: str, deadline: float) -> AsyncIterator[None]:
    """Turn a Redis failure, or no answer within ``deadline`` seconds, into one typed error."""
    try:
        async with asyncio.timeout(deadline):
            yield
    except (RedisError, OSError, TimeoutError) as exc:
        reason = unavailable_reason(exc, deadline)
        raise RedisUnavailableError(f"{operation} failed: Redis unavailable ({reason})") from exc


@dataclass(frozen=True)
class Submitted:
    """What a submit did: the job, and whether it was an earlier one (an idempotent replay)."""

    record: JobRecord
    replayed: bool


class JobRunner:
    """Enqueue and follow jobs. ``async with JobRunner(settings, registry) as runner: ...``"""

    def __init__(
        self,
        settings: Settings,
        registry: Registry,
        *,
        blobs: BlobStore | None = None,
        warn_unserved: bool = True,
    ) -> None:
        """``warn_unserved``: log a warning when jobs land on a queue no live worker consumes,
        or whose live workers lack the job's task."""
        self.settings = settings
        self.registry = registry
        self.keys = Keys(settings.key_prefix)
        self.blobs: BlobStore = blobs or blob_store(settings)
        self._stack = AsyncExitStack()
        self._redis: ArqRedis | None = None
        self._store: JobStore | None = None
        self._callbacks: Callbacks | None = None
        self._creates: Coalescer[Admitted, Created] | None = None
        self.redis_url: str = settings.redis_url or ""
        self._admission = Admission(settings, registry, self.keys)
        self._unserved = UnservedQueues(self.workers) if warn_unserved else None

    async def __aenter__(self) -> JobRunner:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def start(self) -> None:
        s = self.settings
        if s.redis_url is None:
            self.redis_url = await self._stack.enter_async_context(
                embedded_redis(s.data_dir, port=s.embedded_redis_port)
            )
        redis = await connect(
            self.redis_url,
            timeout=s.redis_timeout_seconds,
            default_queue=self.keys.queue(s.default_plan),
        )
        self._stack.push_async_callback(redis.aclose, close_connection_pool=True)
        self._redis = redis
        self._store = JobStore.of(redis, s)
        self._callbacks = Callbacks(s, self.registry, self._store)
        self._creates = Coalescer(self._create_batch)
        self._stack.push_async_callback(self._creates.aclose)

    async def aclose(self) -> None:
        await self._stack.aclose()
        self._redis = None
        self._store = None
        self._callbacks = None
        self._creates = None

    @property
    def redis(self) -> ArqRedis:
        if self._redis is None:
            raise RuntimeError("JobRunner is not started: use 'async with JobRunner(...)'")
        return self._redis

    @property
    def store(self) -> JobStore:
        if self._store is None:
            raise RuntimeError("JobRunner is not started: use 'async with JobRunner(...)'")
        return self._store

    @property
    def creates(self) -> Coalescer[Admitted, Created]:
        """Single submits made in one loop iteration go to Redis as one pipeline."""
        if self._creates is None:
            raise RuntimeError("JobRunner is not started: use 'async with JobRunner(...)'")
        return self._creates

    def _guard(
        self, operation: str, scale: int = 1
    ) -> contextlib.AbstractAsyncContextManager[None]:
        return redis_errors(operation, self.settings.redis_timeout_seconds * 2 * scale)

    # -- enqueue ----------------------------------------------------------------------------

    async def enqueue(
        self,
        task: str | Task[Any],
        params: BaseModel | dict[str, Any] | None = None,
        **options: Any,
    ) -> JobRecord:
        """Enqueue one job; options are the fields of ``EnqueueRequest`` (tenant, plan, ...)."""
        name = task if isinstance(task, str) else task.name
        raw = {} if params is None else params  # a model is checked, then dumped, at the edge
        return await self.submit(parse_request({"task": name, "params": raw, **options}))

    async def submit(self, request: EnqueueRequest) -> JobRecord:
        """Enqueue a validated request: record, indices and arq's entry in one Lua call."""
        return (await self.submit_or_replay(request)).record

    async def submit_or_replay(
        self, request: EnqueueRequest, *, fingerprint: str | None = None
    ) -> Submitted:
        """``submit``, also telling whether an idempotency key returned an earlier job.

        ``fingerprint`` replaces what a repeated key is compared by (task + params): the HTTP
        API compares whole request bodies."""
        prepared = self._admission.admit(request, _now_ms(), fingerprint)
        async with self._guard("enqueue"):
            job_id, created = await self.creates.call(prepared)
            if not created:
                return Submitted(await self.store.get(job_id), replayed=True)
        record = prepared.record()
        if self._unserved:
            await self._unserved.check(record.plan, record.task)
        return Submitted(record, replayed=False)

    async def _create_batch(self, batch: Sequence[Admitted]) -> Sequence[Created | Exception]:
        """The single submits of one loop iteration, as one pipeline of one Lua call each."""
        wake = sorted({p.queue for p in batch if p.ready_now})
        return await self.store.creator.create_batch([(p.new, p.arq_entry()) for p in batch], wake)

    async def enqueue_many(
        self, requests: Sequence[EnqueueRequest | dict[str, Any]]
    ) -> list[JobRecord]:
        """Validate all, then create every record and arq entry in one pipelined round trip."""
        now = _now_ms()
        prepared = [self._admission.admit(parse_request(r), now) for r in requests]
        entries = [(p.new, p.arq_entry()) for p in prepared]
        wake = sorted({p.queue for p in prepared if p.ready_now})
        async with self._guard("enqueue_many", scale=1 + len(prepared) // 1000):
            outcomes = await self.store.create_many(entries, wake)
            records: list[JobRecord] = []
            for p, (job_id, created) in zip(prepared, outcomes, strict=True):
                records.append(p.record() if created else await self.store.get(job_id))
        if self._unserved:
            for plan, task in sorted({(r.plan, r.task) for r in records}):
                await self._unserved.check(plan, task)
        return records

    async def serves(self, plan: str) -> bool:
        """Whether a live worker consumes ``plan``'s queue."""
        return any(plan in worker.get("queues", ()) for worker in await self.workers())

    async def retry(self, job_id: str, *, correlation_id: str | None = None) -> JobRecord:
        """A new job repeating a failed, cancelled or expired one (same task, params, plan,
        priority and limits), with ``retry_of`` naming it."""
        old = await self.get(job_id)
        if old.status not in RETRYABLE:
            raise JobNotRetryableError(
                f"job {job_id} is {old.status.value}; only failed, cancelled or expired jobs "
                "are retried",
                status=old.status.value,
            )
        ttl = (old.expires_at - old.scheduled_at).total_seconds() if old.expires_at else None
        request = EnqueueRequest(
            task=old.task,
            params=old.params,
            tenant=old.tenant,
            plan=old.plan,
            priority=old.priority,
            correlation_id=correlation_id or old.correlation_id,
            ttl_seconds=ttl or None,
            timeout_seconds=old.timeout_seconds,
            max_tries=old.max_tries,
            callback_url=old.callback_url,
            retry_of=old.id,
        )
        return await self.submit(request)

    # -- reads ------------------------------------------------------------------------------

    async def get(self, job_id: str) -> JobRecord:
        async with self._guard("get"):
            return await self.store.get(job_id)

    async def audit(self, job_id: str) -> builtins.list[AuditEntry]:
        async with self._guard("audit"):
            return await self.store.audit(job_id)

    async def list(
        self,
        tenant: str | None = "default",
        *,
        status: JobStatus | str | None = None,
        task: str | None = None,
        offset: int = 0,
        limit: int = 50,
    ) -> JobPage:
        """Newest first: a tenant's jobs, or with ``tenant=None`` every tenant's (an operator's
        view, from the indices kept over all tenants)."""
        if offset < 0 or not 1 <= limit <= 1000:
            raise InvalidInputError("offset must be >= 0 and limit within 1..1000")
        wanted = JobStatus(status) if status else None
        async with self._guard("list"):
            return await self.store.list(
                tenant or ALL_TENANTS, status=wanted, task=task, offset=offset, limit=limit
            )

    async def resolve_id(self, id_or_prefix: str) -> str:
        """The full id of a job named by its id or a unique prefix of at least 8 characters."""
        async with self._guard("resolve"):
            return await resolve_job_id(self.redis, self.keys, id_or_prefix)

    async def result(self, job_id: str) -> Any:
        """The job's result: inline JSON, or loaded from the blob store for large ones."""
        record = await self.get(job_id)
        if record.result_ref:
            return json.loads(await self.blobs.get_bytes(record.result_ref))
        async with self._guard("result"):
            raw = await self.store.result_json(job_id)
        if raw is None:
            return None
        return json.loads(raw)

    async def workers(self) -> builtins.list[dict[str, Any]]:
        async with self._guard("workers"):
            return await WorkerRegistry(self.redis, self.keys).live()

    async def queues(self) -> builtins.list[QueueStats]:
        """Per plan: jobs waiting, running and deferred, and the live workers serving it."""
        async with self._guard("queues"):
            live = await WorkerRegistry(self.redis, self.keys).live()
            return await queue_stats(self.redis, self.keys, self.settings.plans, live, _now_ms())

    async def metrics(self) -> MetricsSnapshot:
        """The cluster-wide counters, durations and queue gauges (what /metrics renders)."""
        async with self._guard("metrics"):
            live = await WorkerRegistry(self.redis, self.keys).live()
            return await read_metrics(self.redis, self.keys, self.settings.plans, live, _now_ms())

    # -- control ----------------------------------------------------------------------------

    async def cancel(self, job_id: str, *, by: str = "api") -> JobRecord:
        """Cancel a waiting job at once, or ask a running one to stop (within about a second)."""
        async with self._guard("cancel"):
            code, status = await self.store.request_cancel(job_id, _now_ms(), by)
        if code == -1:
            raise JobNotCancellableError(f"job {job_id} is already {status}", status=status)
        record = await self.get(job_id)
        if code == 1 and self._callbacks is not None:  # it never ran: no worker reports its end
            await self._callbacks.job_ended(record)
        return record

    async def watch(self, job_id: str) -> AsyncGenerator[JobEvent, None]:
        """Events for one job: a snapshot first, then changes, ending at a terminal status."""
        if not valid_job_id(job_id):
            raise JobNotFoundError(job_id)
        async with self._guard("watch"):
            events = await EventFeed.open(self.redis, self.keys, job_id)
        try:
            if not events.record_fields:
                raise JobNotFoundError(job_id)
            record = decode_record(events.record_fields, job_id)  # read as the feed began
            yield _snapshot(record)
            if record.is_terminal:
                return
            while True:
                async with self._guard("watch"):
                    event = await events.next(timeout=1.0)
                if event is None:  # quiet: re-read in case a message was lost
                    record = await self.get(job_id)
                    if record.is_terminal:
                        yield _snapshot(record)
                        return
                    continue
                yield event
                if event.is_terminal:
                    return
        finally:
            await events.close()

    async def wait(self, job_id: str, timeout: float | None = None) -> JobRecord:
        """Wait until the job is terminal; WaitTimeoutError after ``timeout`` seconds."""
        try:
            async with contextlib.aclosing(self.watch(job_id)) as events, asyncio.timeout(timeout):
                async for event in events:
                    if event.is_terminal:
                        break
        except TimeoutError as exc:
            raise WaitTimeoutError(f"job {job_id} not finished after {timeout}s") from exc
        return await self.get(job_id)


def _snapshot(record: JobRecord) -> JobEvent:
    return JobEvent(
        job_id=record.id,
        kind="snapshot",
        status=record.status,
        progress=record.progress,
        message=record.message,
        attempt=record.attempts,
    )
