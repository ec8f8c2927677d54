"""A job whose task this worker does not have: back to the queue for a worker that has it, or
failed with ``task_not_registered`` naming this worker.

arq looks a job's function up by name in ``Worker.functions``; for a name it lacks it drops the
job, and the record would stay ``queued`` for ever. ``TaskTable`` (that mapping) answers a
missing name with a function that decides instead (domain/task_routing.py).
"""

from __future__ import annotations

import socket
from typing import Any

import structlog
from arq.cron import CronJob
from arq.worker import Function, Retry

from jobrunner.domain.models import JobError, JobRecord
from jobrunner.domain.status import JobStatus
from jobrunner.domain.task_routing import Bounce, decide_missing_task
from jobrunner.errors import JobNotFoundError, RecordCorruptError, TaskNotRegisteredError
from jobrunner.store.bounces import TaskBounces
from jobrunner.store.workers import WorkerRegistry
from jobrunner.worker.outcomes import JobFailed, Services, audit_entry, finish, now_ms

__all__ = ["TaskTable"]

log = structlog.get_logger("jobrunner.worker")
_PENDING = frozenset({JobStatus.QUEUED, JobStatus.RETRYING, JobStatus.RUNNING})
_DECIDE_TIMEOUT_SECONDS = 30.0


class TaskTable(dict[str, Function | CronJob]):
    """arq's name → function mapping; a missing name gets a function that bounces or fails."""

    def __missing__(self, name: str) -> Function:
        async def bounce_or_fail(ctx: dict[Any, Any], *_: Any, **__: Any) -> None:
            await _missing_task(name, ctx)

        return Function(
            name=name,
            coroutine=bounce_or_fail,
            timeout_s=_DECIDE_TIMEOUT_SECONDS,
            keep_result_s=0,
            keep_result_forever=False,
            max_tries=None,  # the worker's: jobrunner decides retries itself
        )


async def _missing_task(task: str, ctx: dict[Any, Any]) -> None:
    services: Services = ctx["services"]
    job_id, attempt = str(ctx["job_id"]), int(ctx["job_try"])
    try:
        record = await services.store.get(job_id)
    except (RecordCorruptError, JobNotFoundError) as exc:
        log.error("job record unusable; job dropped", job_id=job_id, code=exc.code)
        return
    if record.status not in _PENDING:
        return  # cancelled or ended meanwhile: arq drops its entry
    with structlog.contextvars.bound_contextvars(
        job_id=job_id, tenant=record.tenant, correlation_id=record.correlation_id
    ):
        await _decide(services, task, record, attempt)


async def _decide(services: Services, task: str, record: JobRecord, attempt: int) -> None:
    store = services.store
    bounces = TaskBounces(store.redis, store.keys)
    decision = decide_missing_task(
        task=task,
        plan=record.plan,
        worker_id=services.worker_id,
        host=socket.gethostname(),
        live=await WorkerRegistry(store.redis, store.keys).live(),
        bounces=await bounces.count(record.id),
        limit=services.settings.task_bounce_limit,
        base_delay=services.settings.poll_delay_seconds,
    )
    if isinstance(decision, Bounce):
        holders = ", ".join(decision.holders)
        note = audit_entry(
            "bounced",
            attempt=attempt,
            worker_id=services.worker_id,
            message=f"this worker has no task {task!r}; back to the queue for {holders}",
        )
        count = await bounces.bounce(record.id, note)
        log.info("job put back: task not on this worker", task=task, bounces=count,
                 delay=decision.delay, holders=holders)  # fmt: skip
        raise Retry(defer=decision.delay)  # arq: job stays queued, due after the delay
    error = JobError(
        type=TaskNotRegisteredError.__name__,
        code=TaskNotRegisteredError.code,
        message=decision.message,
        attempt=attempt,
    )
    fields = {"finished_at": now_ms(), "error": error, "next_attempt_at": None}
    audit = audit_entry(
        "failed",
        status=JobStatus.FAILED,
        attempt=attempt,
        error=error,
        worker_id=services.worker_id,
    )
    await finish(services, record.id, JobStatus.FAILED, fields, audit, allowed=_PENDING)
    log.warning("job failed", attempt=attempt, code=error.code, error=error.message)
    raise JobFailed(f"{error.code}: {error.message}")
