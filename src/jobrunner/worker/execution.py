"""One attempt of one job: keeps the record true around the task's coroutine.

arq calls ``run_attempt`` (wrapped as an arq ``Function`` per task). It moves the record to
running, awaits the task directly under its timeout, and records success, a retry (raising
arq's ``Retry`` with a backoff delay), a failure, a cancellation, or an interruption by a
shutdown (the job is left for arq to run again, never marked failed).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import structlog
from arq.worker import Function, func

from jobrunner.admission import timeout_limit
from jobrunner.context import JobContext, bind_job_logger
from jobrunner.domain.models import JobError, JobRecord
from jobrunner.domain.status import JobStatus
from jobrunner.errors import JobNotFoundError, JobRunnerError, RecordCorruptError, TaskError
from jobrunner.registry import Task
from jobrunner.store.blobindex import job_blobs
from jobrunner.store.jobs import Transition
from jobrunner.worker.outcomes import (
    JobFailed,
    Services,
    audit_entry,
    fail,
    fail_or_retry,
    finish,
    interrupted,
    now_ms,
    succeed,
)
from jobrunner.worker.progress import ProgressReporter

__all__ = ["JobFailed", "Services", "arq_function", "run_attempt"]

log = structlog.get_logger("jobrunner.worker")
_STARTABLE = frozenset({JobStatus.QUEUED, JobStatus.RETRYING, JobStatus.RUNNING})


def arq_function(task: Task[Any], services: Services) -> Function:
    """The arq Function that runs ``task``; arq's own timeout is only a backstop."""

    async def run(ctx: dict[str, Any], **kwargs: Any) -> Any:
        return await run_attempt(services, task, ctx, kwargs)

    limit = timeout_limit(task, services.settings)
    return func(run, name=task.name, timeout=limit + 30, max_tries=1_000_000, keep_result=0)


async def run_attempt(
    services: Services, task: Task[Any], arq_ctx: dict[str, Any], kwargs: dict[str, Any]
) -> Any:
    job_id, attempt = str(arq_ctx["job_id"]), int(arq_ctx["job_try"])
    expires_ms = kwargs.get("expires_ms")
    if expires_ms is not None and attempt == 1 and now_ms() > float(expires_ms):
        await finish(
            services,
            job_id,
            JobStatus.EXPIRED,
            {},
            audit_entry("expired", attempt=0),
            allowed=frozenset({JobStatus.QUEUED}),
        )
        return None
    try:
        record = await _start(services, job_id, attempt)
    except (RecordCorruptError, JobNotFoundError) as exc:
        # Reported and dropped; the worker goes on with other jobs.
        log.error(
            "job record unusable; job dropped", job_id=job_id, code=exc.code, error=exc.message
        )
        return None
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
            return await fail(services, record, attempt, error)
        return await _run_started(services, task, record, attempt)


async def _start(services: Services, job_id: str, attempt: int) -> JobRecord | None:
    now = now_ms()
    change = Transition(
        target=JobStatus.RUNNING,
        allowed_from=_STARTABLE,
        fields={
            "started_at": now,
            "attempts": attempt,
            "worker_id": services.worker_id,
            "next_attempt_at": None,
        },
        audit=audit_entry(
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
        # outputs are recorded as this job's; other tenants' blobs do not exist for it
        blobs=job_blobs(
            services.blobs, services.store, services.settings.upload_retention_seconds, record
        ),
        log=bind_job_logger(record.id, record.tenant, record.correlation_id, task.name),
        _sink=reporter.report,
        settings=services.settings,
        _loop=asyncio.get_running_loop(),
        store=services.store,
        timeout_seconds=record.timeout_seconds,
    )
    services.running.add(record.id)
    started = time.monotonic()
    try:
        value, error = await _execute(task, ctx, record)
        services.durations.observe(task.name, time.monotonic() - started)
    except asyncio.CancelledError:
        ctx.cancel_token.set()  # threads started by the task can notice and stop
        await asyncio.shield(interrupted(services, record, attempt, reporter))
        raise
    finally:
        services.running.discard(record.id)
    if error is None:
        return await succeed(services, record, attempt, value, reporter)
    return await fail_or_retry(services, task, record, attempt, error, reporter)


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
        ctx.cancel_token.set()  # threads the task started stop too, not only its coroutine
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
