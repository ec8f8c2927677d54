"""One attempt of one job: keeps the record true around the task's coroutine.

arq calls ``run_attempt`` (wrapped as an arq ``Function`` per task). It moves the record to
running, awaits the task directly under its timeout, and records success, a retry (raising
arq's ``Retry`` with a backoff delay), a failure, a cancellation, or an interruption by a
shutdown (the job is left for arq to run again, never marked failed).
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import structlog
from arq.worker import Function, Retry, func
from pydantic import BaseModel

from jobrunner.context import JobContext, bind_job_logger
from jobrunner.domain.models import AuditEntry, JobError, JobRecord
from jobrunner.domain.retry import RetryPolicy, next_delay, should_retry
from jobrunner.domain.status import JobStatus
from jobrunner.errors import JobRunnerError, TaskError
from jobrunner.registry import Task
from jobrunner.settings import Settings
from jobrunner.store.blobs import BlobStore
from jobrunner.store.jobs import JobStore, Transition
from jobrunner.worker.progress import ProgressReporter

log = structlog.get_logger("jobrunner.worker")
_STARTABLE = frozenset({JobStatus.QUEUED, JobStatus.RETRYING, JobStatus.RUNNING})
_RUNNING = frozenset({JobStatus.RUNNING})


class JobFailed(Exception):
    """Raised to arq after the record says failed, so arq's own bookkeeping agrees."""


@dataclass
class Services:
    """What every attempt on this worker shares."""

    store: JobStore
    blobs: BlobStore
    settings: Settings
    worker_id: str
    rand: Callable[[], float] = random.random
    loop: asyncio.AbstractEventLoop | None = None
    running: set[str] = field(default_factory=set)


def _now_ms() -> float:
    return time.time() * 1000


def _audit(event: str, **fields: Any) -> AuditEntry:
    return AuditEntry(at=datetime.now(tz=UTC), event=event, **fields)


def arq_function(task: Task[Any], services: Services) -> Function:
    """The arq Function that runs ``task``; arq's own timeout is only a backstop."""

    async def run(ctx: dict[str, Any], **kwargs: Any) -> Any:
        return await run_attempt(services, task, ctx, kwargs)

    s = services.settings
    limit = task.max_timeout_seconds or max(
        task.timeout_seconds or s.default_timeout_seconds, s.max_timeout_seconds
    )
    return func(run, name=task.name, timeout=limit + 30, max_tries=1_000_000, keep_result=0)


async def run_attempt(
    services: Services, task: Task[Any], arq_ctx: dict[str, Any], kwargs: dict[str, Any]
) -> Any:
    job_id, attempt = str(arq_ctx["job_id"]), int(arq_ctx["job_try"])
    expires_ms = kwargs.get("expires_ms")
    if expires_ms is not None and attempt == 1 and _now_ms() > float(expires_ms):
        await _finish(
            services,
            job_id,
            JobStatus.EXPIRED,
            {},
            _audit("expired", attempt=0),
            allowed=frozenset({JobStatus.QUEUED}),
        )
        return None
    record = await _start(services, job_id, attempt)
    if record is None:
        return None  # cancelled or expired before it could start
    with structlog.contextvars.bound_contextvars(
        job_id=job_id, tenant=record.tenant, correlation_id=record.correlation_id
    ):
        if record.interruptions > services.settings.max_interruptions:
            error = JobError(
                type="Interrupted",
                code="too_many_interruptions",
                message=f"interrupted {record.interruptions} times",
                attempt=attempt,
            )
            return await _fail(services, record, attempt, error)
        return await _run_started(services, task, record, attempt)


async def _start(services: Services, job_id: str, attempt: int) -> JobRecord | None:
    now = _now_ms()
    change = Transition(
        target=JobStatus.RUNNING,
        allowed_from=_STARTABLE,
        fields={
            "started_at": now,
            "attempts": attempt,
            "worker_id": services.worker_id,
            "next_attempt_at": None,
        },
        audit=_audit(
            "started", status=JobStatus.RUNNING, attempt=attempt, worker_id=services.worker_id
        ),
        increment="interruptions",  # running -> running: the previous worker died mid-attempt
        increment_when=JobStatus.RUNNING,
    )
    record = await services.store.transition(job_id, change, now)
    if record is None:
        log.info("job not started: no longer waiting", job_id=job_id)
    return record


async def _run_started(services: Services, task: Task[Any], record: JobRecord, attempt: int) -> Any:
    reporter = ProgressReporter(
        services.store, record.id, services.settings.progress_interval_seconds
    )
    ctx = JobContext(
        job_id=record.id,
        attempt=attempt,
        tenant=record.tenant,
        correlation_id=record.correlation_id,
        task=task.name,
        blobs=services.blobs,
        log=bind_job_logger(record.id, record.tenant, record.correlation_id, task.name),
        _sink=reporter.report,
        settings=services.settings,
        _loop=asyncio.get_running_loop(),
    )
    services.running.add(record.id)
    try:
        value, error = await _execute(task, ctx, record)
    except asyncio.CancelledError:
        ctx.cancel_token.set()  # threads started by the task can notice and stop
        await asyncio.shield(_interrupted(services, record, attempt, reporter))
        raise
    finally:
        services.running.discard(record.id)
    if error is None:
        return await _succeed(services, record, attempt, value, reporter)
    return await _fail_or_retry(services, task, record, attempt, error, reporter)


async def _execute(
    task: Task[Any], ctx: JobContext, record: JobRecord
) -> tuple[Any, JobError | None]:
    """Await the task under its timeout; an exception becomes a JobError, never escapes."""
    timeout = asyncio.timeout(record.timeout_seconds)
    try:
        params = task.parse(record.params)
        async with timeout:
            return await task.fn(ctx, params), None
    except TimeoutError as exc:
        if not timeout.expired():
            return None, _error_of(exc, ctx.attempt)
        message = f"attempt {ctx.attempt} exceeded its {record.timeout_seconds:g}s timeout"
        return None, JobError(
            type="TimeoutError",
            code="timeout",
            message=message,
            retryable=True,
            attempt=ctx.attempt,
        )
    except Exception as exc:
        return None, _error_of(exc, ctx.attempt)


def _error_of(exc: Exception, attempt: int) -> JobError:
    if isinstance(exc, TaskError):
        retryable = exc.retryable
    elif isinstance(exc, JobRunnerError):
        retryable = False
    else:
        # an unexpected exception: recorded with its type, and worth another try
        log.exception("task raised", attempt=attempt)
        retryable = True
    code = exc.code if isinstance(exc, JobRunnerError) else "task_error"
    return JobError(
        type=type(exc).__name__,
        code=code,
        message=str(exc) or type(exc).__name__,
        retryable=retryable,
        attempt=attempt,
    )


async def _succeed(
    services: Services, record: JobRecord, attempt: int, value: Any, reporter: ProgressReporter
) -> None:
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    try:
        payload = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    except (TypeError, ValueError) as exc:
        error = JobError(
            type=type(exc).__name__,
            code="result_not_serialisable",
            message=str(exc),
            attempt=attempt,
        )
        return await _fail(services, record, attempt, error)
    fields: dict[str, Any] = {
        "progress": 100.0,
        "finished_at": _now_ms(),
        "error": None,
        "message": reporter.last_message,
    }
    result_json: str | None = payload
    if len(payload.encode()) > services.settings.inline_result_max_bytes:
        fields["result_ref"] = await services.blobs.put_bytes(payload.encode(), name="result.json")
        result_json = None
    audit = _audit("succeeded", status=JobStatus.SUCCEEDED, attempt=attempt, progress=100.0)
    change = Transition(JobStatus.SUCCEEDED, _RUNNING, fields, audit, result_json=result_json)
    await services.store.transition(record.id, change, _now_ms())
    log.info("job succeeded", attempt=attempt)
    return None


def _policy(services: Services, task: Task[Any], record: JobRecord) -> RetryPolicy:
    base = task.retry or services.settings.retry_policy
    return base.model_copy(update={"max_tries": record.max_tries})


async def _fail_or_retry(
    services: Services,
    task: Task[Any],
    record: JobRecord,
    attempt: int,
    error: JobError,
    reporter: ProgressReporter,
) -> None:
    counted = attempt - record.interruptions  # runs cut short by a shutdown or crash don't count
    policy = _policy(services, task, record)
    if not should_retry(counted, policy, retryable=error.retryable):
        return await _fail(services, record, attempt, error, reporter.last_fields())
    delay = next_delay(counted, policy, services.rand())
    now = _now_ms()
    fields = {"next_attempt_at": now + delay * 1000, "error": error, **reporter.last_fields()}
    audit = _audit(
        "attempt_failed",
        status=JobStatus.RETRYING,
        attempt=attempt,
        error=error,
        message=f"retrying in {delay:.3f}s",
    )
    await services.store.transition(
        record.id, Transition(JobStatus.RETRYING, _RUNNING, fields, audit), now
    )
    log.warning("job attempt failed; retrying", attempt=attempt, code=error.code, delay=delay)
    raise Retry(defer=delay)


async def _fail(
    services: Services,
    record: JobRecord,
    attempt: int,
    error: JobError,
    extra: dict[str, Any] | None = None,
) -> None:
    fields = {"finished_at": _now_ms(), "error": error, "next_attempt_at": None, **(extra or {})}
    audit = _audit("failed", status=JobStatus.FAILED, attempt=attempt, error=error)
    await _finish(services, record.id, JobStatus.FAILED, fields, audit, allowed=_RUNNING)
    log.warning("job failed", attempt=attempt, code=error.code, error=error.message)
    raise JobFailed(f"{error.code}: {error.message}")


async def _interrupted(
    services: Services, record: JobRecord, attempt: int, reporter: ProgressReporter
) -> None:
    """Cancelled mid-run: by a user (the record asks for it) or by a worker shutting down."""
    current = await services.store.get(record.id)
    now = _now_ms()
    if current.cancel_requested:
        fields = {"finished_at": now, **reporter.last_fields()}
        audit = _audit("cancelled", status=JobStatus.CANCELLED, attempt=attempt)
        await _finish(services, record.id, JobStatus.CANCELLED, fields, audit, allowed=_RUNNING)
        log.info("job cancelled while running", attempt=attempt)
        return
    audit = _audit(
        "interrupted",
        status=JobStatus.QUEUED,
        attempt=attempt,
        message="worker stopped before the attempt finished; it will run again",
    )
    change = Transition(
        JobStatus.QUEUED, _RUNNING, reporter.last_fields(), audit, increment="interruptions"
    )
    await services.store.transition(record.id, change, now)
    log.info("job interrupted by shutdown; left to run again", attempt=attempt)


async def _finish(
    services: Services,
    job_id: str,
    target: JobStatus,
    fields: dict[str, Any],
    audit: AuditEntry,
    *,
    allowed: frozenset[JobStatus],
) -> None:
    if target is JobStatus.EXPIRED:
        fields = {"finished_at": _now_ms(), **fields}
        audit = audit.model_copy(update={"status": JobStatus.EXPIRED})
    await services.store.transition(job_id, Transition(target, allowed, fields, audit), _now_ms())
