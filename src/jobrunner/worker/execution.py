"""One attempt of one claimed job: runs the task's coroutine and says how it ended.

The claim already moved the record to running (store/pickup.py); this awaits the task under
its timeout and hands the ``Ending`` (success, a retry with backoff, a failure, a cancel or an
interruption by a shutdown) to ``end``, which writes it with other endings in one call.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import structlog

from jobrunner.context import JobContext, bind_job_logger
from jobrunner.domain.models import JobError
from jobrunner.errors import JobRunnerError, TaskError
from jobrunner.registry import Task
from jobrunner.store.blobindex import job_blobs
from jobrunner.store.finishes import Ended, Ending
from jobrunner.store.pickup import Claimed, StartedRecord
from jobrunner.worker.outcomes import (
    Attempt,
    Services,
    after_end,
    failed,
    interrupted,
    retry_or_fail,
    succeeded,
)
from jobrunner.worker.progress import ProgressReporter

__all__ = ["EndFn", "Services", "attempt_of", "run_claimed"]

log = structlog.get_logger("jobrunner.worker")
EndFn = Callable[[Ending], Awaitable[Ended]]


def attempt_of(job: Claimed, queue: str) -> Attempt:
    """arq's payload fields of a claimed job (a payload that does not decode: no function);
    a job of ours is claimed without its payload: what admission wrote there is the record's."""
    r = job.record
    if r is not None and not job.payload:
        kwargs = {} if r.expires_ms is None else {"expires_ms": r.expires_ms}
        return Attempt(job, r.task, kwargs, r.created_ms, queue)
    try:
        d = json.loads(job.payload)  # arq's payload, JSON (see serializer.py)
        return Attempt(job, str(d["f"]), dict(d.get("k") or {}), int(d.get("et") or 0), queue)
    except (ValueError, KeyError, TypeError):
        return Attempt(job, "", {}, 0, queue)


def _refusal(a: Attempt, task: Task[Any] | None, services: Services) -> JobError | None:
    """Why this attempt cannot run at all, if it cannot."""
    record = a.job.record
    if record is None:
        message = "no job record (enqueued by a plain arq client, or the record expired)"
        return JobError(type="NoRecord", code="no_record", message=message, attempt=a.number)
    if task is None:
        message = f"this worker has no task {a.function or record.task!r}"
        return JobError(type="UnknownTask", code="unknown_task", message=message, attempt=a.number)
    if record.interruptions > services.settings.max_interruptions:
        message = f"interrupted {record.interruptions} times"
        return JobError(
            type="Interrupted", code="too_many_interruptions", message=message, attempt=a.number
        )
    return None


async def run_claimed(
    services: Services, task: Task[Any] | None, a: Attempt, end: EndFn
) -> str | None:
    """Run one claimed attempt to its end, written through ``end``; the status it recorded
    (None when the record had moved on)."""
    record = a.job.record
    error = _refusal(a, task, services)
    if error is not None or task is None or record is None:
        assert error is not None
        log.error("job cannot run", job_id=a.job.job_id, code=error.code, error=error.message)
        ending = failed(a, error)
        return await after_end(services, a, ending, await end(ending))
    with structlog.contextvars.bound_contextvars(
        job_id=record.id, tenant=record.tenant, correlation_id=record.correlation_id
    ):
        if services.settings.log_level.lower() == "debug":
            log.debug("job started", attempt=a.number, task=task.name)
        return await _run_started(services, task, a, record, end)


def _context(
    services: Services, task: Task[Any], a: Attempt, record: StartedRecord, sink: Any
) -> JobContext:
    return JobContext(
        job_id=record.id,
        attempt=a.number,
        tenant=record.tenant,
        correlation_id=record.correlation_id,
        task=task.name,
        # outputs are recorded as this job's; other tenants' blobs do not exist for it
        blobs=job_blobs(
            services.blobs,
            services.store,
            services.settings.upload_retention_seconds,
            tenant=record.tenant,
            job_id=record.id,
        ),
        log=bind_job_logger(record.id, record.tenant, record.correlation_id, task.name),
        _sink=sink,
        settings=services.settings,
        _loop=asyncio.get_running_loop(),
        store=services.store,
        timeout_seconds=record.timeout_seconds,
    )


async def _run_started(
    services: Services, task: Task[Any], a: Attempt, record: StartedRecord, end: EndFn
) -> str | None:
    reporter = ProgressReporter(
        services.store, record.id, services.settings.progress_interval_seconds, a.number
    )
    ctx = _context(services, task, a, record, reporter.report)
    services.running.add(record.id)
    started = time.monotonic()
    try:
        value, error = await _execute(task, ctx, record)
        services.durations.observe(task.name, time.monotonic() - started)
    except asyncio.CancelledError:
        ctx.cancel_token.set()  # threads started by the task can notice and stop
        ending = interrupted(a, reporter)
        ended = await end(ending)  # shielded: the write happens whatever the caller does
        await asyncio.shield(after_end(services, a, ending, ended))
        raise
    finally:
        services.running.discard(record.id)
    if error is None:
        ending = await succeeded(services, a, value, reporter)
    else:
        ending = retry_or_fail(services, task, a, record, error, reporter)
    return await after_end(services, a, ending, await end(ending))


async def _execute(
    task: Task[Any], ctx: JobContext, record: StartedRecord
) -> tuple[Any, JobError | None]:
    """Await the task under its timeout; an exception becomes a JobError, never escapes."""
    timeout = asyncio.timeout(record.timeout_seconds)
    try:
        params = task.parse(json.loads(record.params_json))
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
