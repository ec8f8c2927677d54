"""How an attempt ends: the ``Ending`` for success, retry, failure, cancel or interruption,
and what follows once the store wrote it (figures, webhook)."""

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
from arq.jobs import serialize_result
from pydantic import BaseModel

from jobrunner.callbacks import Callbacks
from jobrunner.domain.durations import DurationRecorder
from jobrunner.domain.minutes import MinuteRecorder
from jobrunner.domain.models import JobError
from jobrunner.domain.retry import RetryPolicy, next_delay, should_retry
from jobrunner.domain.status import TERMINAL, JobStatus
from jobrunner.registry import Task
from jobrunner.serializer import serialize
from jobrunner.settings import Settings
from jobrunner.store.blobindex import job_blobs
from jobrunner.store.blobs import BlobStore
from jobrunner.store.finishes import Ended, Ending
from jobrunner.store.jobs import JobStore
from jobrunner.store.pickup import Claimed, StartedRecord
from jobrunner.worker.progress import ProgressReporter

log = structlog.get_logger("jobrunner.worker")


@dataclass
class Services:
    """What every attempt on this worker shares."""

    store: JobStore
    blobs: BlobStore
    settings: Settings
    worker_id: str
    callbacks: Callbacks
    durations: DurationRecorder = field(default_factory=DurationRecorder)
    minutes: MinuteRecorder = field(default_factory=MinuteRecorder)
    rand: Callable[[], float] = random.random
    loop: asyncio.AbstractEventLoop | None = None
    running: set[str] = field(default_factory=set)

    @property
    def chatty(self) -> bool:
        """Whether info lines are logged (skipping them saves a logger per job otherwise)."""
        return self.settings.log_level.lower() in ("debug", "info")


@dataclass(frozen=True, slots=True)
class Attempt:
    """One claimed attempt: the job, arq's payload fields, its queue and when it started."""

    job: Claimed
    function: str
    kwargs: dict[str, Any]
    enqueue_ms: int
    queue: str
    started_ms: float = field(default_factory=lambda: time.time() * 1000)

    @property
    def number(self) -> int:
        return self.job.attempt


def now_ms() -> float:
    return time.time() * 1000


def audit(event: str, **fields: Any) -> str:
    """An audit entry's JSON, as ``AuditEntry.model_dump_json(exclude_none=True)`` writes it
    (built directly: this runs for every attempt)."""
    at = datetime.now(tz=UTC).isoformat().replace("+00:00", "Z")
    entry: dict[str, Any] = {"at": at, "event": event}
    for name, value in fields.items():
        if isinstance(value, BaseModel):
            entry[name] = value.model_dump(mode="json", exclude_none=True)
        elif value is not None:
            entry[name] = value
    return json.dumps(entry, separators=(",", ":"), ensure_ascii=False)


def arq_result(a: Attempt, success: bool, value: Any) -> bytes | None:
    """arq's result entry (its format), so arq's ``Job(id).result()``/``info()`` read it."""
    return serialize_result(
        a.function,
        (),
        a.kwargs,
        a.number,
        a.enqueue_ms,
        success,
        value,
        int(a.started_ms),
        int(now_ms()),
        f"{a.job.job_id}:{a.function}",
        a.queue,
        job_id=a.job.job_id,
        serializer=serialize,
    )


def _error_value(error: JobError) -> dict[str, str]:
    return {"__error__": error.type, "message": f"{error.code}: {error.message}"}


async def succeeded(
    services: Services, a: Attempt, value: Any, reporter: ProgressReporter
) -> Ending:
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    try:
        payload = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    except (TypeError, ValueError) as exc:
        error = JobError(
            type=type(exc).__name__,
            code="result_not_serialisable",
            message=str(exc),
            attempt=a.number,
        )
        return failed(a, error)
    fields: dict[str, Any] = {
        "progress": 100.0,
        "finished_at": now_ms(),
        "error": None,
        "message": reporter.last_message,
    }
    result_json: str | None = payload
    if len(payload.encode()) > services.settings.inline_result_max_bytes:
        # an output of the job: the cleanup deletes it with the job's result
        owned = job_blobs(
            services.blobs,
            services.store,
            services.settings.upload_retention_seconds,
            tenant=a.job.record.tenant if a.job.record else "",
            job_id=a.job.job_id,
        )
        fields["result_ref"] = await owned.put_bytes(payload.encode(), name="result.json")
        result_json, value = None, {"result_ref": fields["result_ref"]}
    entry = audit("succeeded", status=JobStatus.SUCCEEDED, attempt=a.number, progress=100.0)
    arq = arq_result(a, True, value)
    return Ending(
        a.queue,
        a.job.job_id,
        a.number,
        "end",
        JobStatus.SUCCEEDED,
        fields,
        entry,
        # arq's result carries the same value: one copy (JobStore.result_json reads either)
        result_json=None if arq is not None else result_json,
        arq_result=arq,
    )


def failed(a: Attempt, error: JobError, extra: dict[str, Any] | None = None) -> Ending:
    fields = {"finished_at": now_ms(), "error": error, "next_attempt_at": None, **(extra or {})}
    entry = audit("failed", status=JobStatus.FAILED, attempt=a.number, error=error)
    return Ending(
        a.queue,
        a.job.job_id,
        a.number,
        "end",
        JobStatus.FAILED,
        fields,
        entry,
        arq_result=arq_result(a, False, _error_value(error)),
    )


def _policy(services: Services, task: Task[Any], record: StartedRecord) -> RetryPolicy:
    base = task.retry or services.settings.retry_policy
    return base.model_copy(update={"max_tries": record.max_tries})


def retry_or_fail(
    services: Services,
    task: Task[Any],
    a: Attempt,
    record: StartedRecord,
    error: JobError,
    reporter: ProgressReporter,
) -> Ending:
    counted = a.number - record.interruptions  # runs cut short by a shutdown or crash don't count
    policy = _policy(services, task, record)
    if not should_retry(counted, policy, retryable=error.retryable):
        return failed(a, error, reporter.last_fields())
    delay = next_delay(counted, policy, services.rand())
    at = now_ms() + delay * 1000
    fields = {"next_attempt_at": at, "error": error, **reporter.last_fields()}
    entry = audit(
        "attempt_failed",
        status=JobStatus.RETRYING,
        attempt=a.number,
        error=error,
        message=f"retrying in {delay:.3f}s",
    )
    log.warning("job attempt failed; retrying", attempt=a.number, code=error.code, delay=delay)
    return Ending(
        a.queue, a.job.job_id, a.number, "retry", JobStatus.RETRYING, fields, entry, score=int(at)
    )


def interrupted(a: Attempt, reporter: ProgressReporter | None) -> Ending:
    """Cancelled mid-run: by a cancel (the record asks for it: cancelled) or by a worker
    shutting down (queued again at its old place); the finish call tells which."""
    entry = audit(
        "interrupted",
        status=JobStatus.QUEUED,
        attempt=a.number,
        message="worker stopped before the attempt finished; it will run again",
    )
    cancelled = audit("cancelled", status=JobStatus.CANCELLED, attempt=a.number)
    return Ending(
        a.queue,
        a.job.job_id,
        a.number,
        "interrupt",
        JobStatus.QUEUED,
        reporter.last_fields() if reporter else {},
        entry,
        score=a.job.score,
        cancel_audit_json=cancelled,
        arq_result=arq_result(a, False, asyncio.CancelledError()),
    )


async def after_end(services: Services, a: Attempt, ending: Ending, ended: Ended) -> str | None:
    """Log the outcome; for a job that ended here, its per-minute figure and its webhook.
    Returns the status recorded (None: the record had moved on)."""
    record = a.job.record
    if not ended.moved or record is None:
        log.info("job outcome not recorded: the record moved on", status=ended.status)
        return None
    status = JobStatus(ended.status)
    if status is JobStatus.SUCCEEDED:
        if services.chatty:
            log.info("job succeeded", attempt=a.number)
    elif status is JobStatus.FAILED:
        error = ending.fields.get("error")
        code = error.code if isinstance(error, JobError) else None
        message = error.message if isinstance(error, JobError) else None
        log.warning("job failed", attempt=a.number, code=code, error=message)
    elif status is JobStatus.CANCELLED:
        log.info("job cancelled while running", attempt=a.number)
    elif status is JobStatus.QUEUED:
        log.info("job interrupted by shutdown; left to run again", attempt=a.number)
    if status in TERMINAL:
        await ended_job(
            services, a.job.job_id, record.plan, status, a.started_ms, record.callback_url
        )
    return status.value


async def ended_job(
    services: Services,
    job_id: str,
    plan: str,
    status: JobStatus,
    started_ms: float | None,
    callback_url: str | None,
) -> None:
    """Into the per-minute figures (flushed by the heartbeat): the job, and how long its attempt
    ran when it ran to an end of its own; then its webhook, if it has one."""
    ended = now_ms()
    run = None
    if started_ms is not None and status in (JobStatus.SUCCEEDED, JobStatus.FAILED):
        run = (ended - started_ms) / 1000
    services.minutes.observe(plan, status.value, run, ended)
    if callback_url is not None:
        await services.callbacks.job_ended(await services.store.get(job_id))
