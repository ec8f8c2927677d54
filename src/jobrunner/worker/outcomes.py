"""How an attempt ends: the record change for success, retry, failure, cancel or interruption."""

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
from arq.worker import Retry
from pydantic import BaseModel

from jobrunner.callbacks import Callbacks
from jobrunner.domain.durations import DurationRecorder
from jobrunner.domain.minutes import MinuteRecorder
from jobrunner.domain.models import AuditEntry, JobError, JobRecord
from jobrunner.domain.retry import RetryPolicy, next_delay, should_retry
from jobrunner.domain.status import JobStatus
from jobrunner.registry import Task
from jobrunner.settings import Settings
from jobrunner.store.blobindex import job_blobs
from jobrunner.store.blobs import BlobStore
from jobrunner.store.jobs import JobStore, Transition
from jobrunner.worker.progress import ProgressReporter

log = structlog.get_logger("jobrunner.worker")
RUNNING_ONLY = frozenset({JobStatus.RUNNING})


class JobFailed(Exception):
    """Raised to arq after the record says failed, so arq's own bookkeeping agrees."""


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


def now_ms() -> float:
    return time.time() * 1000


def audit_entry(event: str, **fields: Any) -> AuditEntry:
    return AuditEntry(at=datetime.now(tz=UTC), event=event, **fields)


async def succeed(
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
        return await fail(services, record, attempt, error)
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
            services.blobs, services.store, services.settings.upload_retention_seconds, record
        )
        fields["result_ref"] = await owned.put_bytes(payload.encode(), name="result.json")
        result_json = None
    audit = audit_entry("succeeded", status=JobStatus.SUCCEEDED, attempt=attempt, progress=100.0)
    change = Transition(JobStatus.SUCCEEDED, RUNNING_ONLY, fields, audit, result_json=result_json)
    await _ended(services, await services.store.transition(record.id, change, now_ms()))
    log.info("job succeeded", attempt=attempt)
    return None


def _policy(services: Services, task: Task[Any], record: JobRecord) -> RetryPolicy:
    base = task.retry or services.settings.retry_policy
    return base.model_copy(update={"max_tries": record.max_tries})


async def fail_or_retry(
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
        return await fail(services, record, attempt, error, reporter.last_fields())
    delay = next_delay(counted, policy, services.rand())
    now = now_ms()
    fields = {"next_attempt_at": now + delay * 1000, "error": error, **reporter.last_fields()}
    audit = audit_entry(
        "attempt_failed",
        status=JobStatus.RETRYING,
        attempt=attempt,
        error=error,
        message=f"retrying in {delay:.3f}s",
    )
    await services.store.transition(
        record.id, Transition(JobStatus.RETRYING, RUNNING_ONLY, fields, audit), now
    )
    log.warning("job attempt failed; retrying", attempt=attempt, code=error.code, delay=delay)
    raise Retry(defer=delay)


async def fail(
    services: Services,
    record: JobRecord,
    attempt: int,
    error: JobError,
    extra: dict[str, Any] | None = None,
) -> None:
    fields = {"finished_at": now_ms(), "error": error, "next_attempt_at": None, **(extra or {})}
    audit = audit_entry("failed", status=JobStatus.FAILED, attempt=attempt, error=error)
    await finish(services, record.id, JobStatus.FAILED, fields, audit, allowed=RUNNING_ONLY)
    log.warning("job failed", attempt=attempt, code=error.code, error=error.message)
    raise JobFailed(f"{error.code}: {error.message}")


async def interrupted(
    services: Services, record: JobRecord, attempt: int, reporter: ProgressReporter
) -> None:
    """Cancelled mid-run: by a user (the record asks for it) or by a worker shutting down."""
    current = await services.store.get(record.id)
    now = now_ms()
    if current.cancel_requested:
        fields = {"finished_at": now, **reporter.last_fields()}
        audit = audit_entry("cancelled", status=JobStatus.CANCELLED, attempt=attempt)
        await finish(services, record.id, JobStatus.CANCELLED, fields, audit, allowed=RUNNING_ONLY)
        log.info("job cancelled while running", attempt=attempt)
        return
    audit = audit_entry(
        "interrupted",
        status=JobStatus.QUEUED,
        attempt=attempt,
        message="worker stopped before the attempt finished; it will run again",
    )
    change = Transition(
        JobStatus.QUEUED, RUNNING_ONLY, reporter.last_fields(), audit, increment="interruptions"
    )
    await services.store.transition(record.id, change, now)
    log.info("job interrupted by shutdown; left to run again", attempt=attempt)


async def finish(
    services: Services,
    job_id: str,
    target: JobStatus,
    fields: dict[str, Any],
    audit: AuditEntry,
    *,
    allowed: frozenset[JobStatus],
) -> None:
    if target is JobStatus.EXPIRED:
        fields = {"finished_at": now_ms(), **fields}
        audit = audit.model_copy(update={"status": JobStatus.EXPIRED})
    change = Transition(target, allowed, fields, audit)
    await _ended(services, await services.store.transition(job_id, change, now_ms()))


async def _ended(services: Services, record: JobRecord | None) -> None:
    """A terminal transition happened (``record``) or was refused (None)."""
    if record is not None:
        _count_minute(services, record)
        await services.callbacks.job_ended(record)


def _count_minute(services: Services, record: JobRecord) -> None:
    """Into the per-minute figures (flushed by the heartbeat): the job, and how long its last
    attempt ran when it ran to an end of its own (succeeded or failed)."""
    ended = record.finished_at or datetime.now(tz=UTC)
    run = None
    if record.started_at is not None and record.status in (JobStatus.SUCCEEDED, JobStatus.FAILED):
        run = (ended - record.started_at).total_seconds()
    services.minutes.observe(record.plan, record.status.value, run, ended.timestamp() * 1000)
