"""A job whose task this worker does not have: back to the queue for a worker that has it, or
failed with ``task_not_registered`` naming this worker.

The claim call (store/lua/start.lua) leaves such a job's record as it was and hands it here
with its lease held; the decision is domain/task_routing.py's.
"""

from __future__ import annotations

import socket
from typing import Any

import structlog

from jobrunner.domain.models import JobError
from jobrunner.domain.status import JobStatus
from jobrunner.domain.task_routing import Bounce, decide_missing_task
from jobrunner.errors import TaskNotRegisteredError
from jobrunner.store.bounces import TaskBounces
from jobrunner.store.finishes import Ending
from jobrunner.store.pickup import MissingAtPickup
from jobrunner.store.workers import WorkerRegistry
from jobrunner.worker.execution import EndFn
from jobrunner.worker.outcomes import Services, audit, ended_job, now_ms

__all__ = ["handle_missing"]

log = structlog.get_logger("jobrunner.worker")


async def handle_missing(services: Services, queue: str, job: MissingAtPickup, end: EndFn) -> None:
    """Bounce ``job`` to a worker that has its task, or fail it when none will."""
    with structlog.contextvars.bound_contextvars(job_id=job.job_id):
        store = services.store
        bounces = TaskBounces(store.redis, store.keys)
        decision = decide_missing_task(
            task=job.task,
            plan=job.plan,
            worker_id=services.worker_id,
            host=socket.gethostname(),
            live=await WorkerRegistry(store.redis, store.keys).live(),
            bounces=await bounces.count(job.job_id),
            limit=services.settings.task_bounce_limit,
            base_delay=services.settings.poll_delay_seconds,
        )
        if isinstance(decision, Bounce):
            await _bounce(services, bounces, queue, job, decision)
        else:
            await _fail(services, queue, job, decision.message, end)


async def _bounce(
    services: Services, bounces: TaskBounces, queue: str, job: MissingAtPickup, decision: Bounce
) -> None:
    holders = ", ".join(decision.holders)
    note: dict[str, Any] = {
        "attempt": job.attempt,
        "worker_id": services.worker_id,
        "message": f"this worker has no task {job.task!r}; back to the queue for {holders}",
    }
    due_ms = int(now_ms() + decision.delay * 1000)
    count = await bounces.bounce(job.job_id, audit("bounced", **note), queue=queue, due_ms=due_ms)
    log.info("job put back: task not on this worker", task=job.task, bounces=count,
             delay=decision.delay, holders=holders)  # fmt: skip


async def _fail(
    services: Services, queue: str, job: MissingAtPickup, message: str, end: EndFn
) -> None:
    error = JobError(type=TaskNotRegisteredError.__name__, code=TaskNotRegisteredError.code,
                     message=message, attempt=job.attempt)  # fmt: skip
    fields = {"finished_at": now_ms(), "error": error, "next_attempt_at": None}
    entry = audit("failed", status=JobStatus.FAILED, attempt=job.attempt, error=error,
                  worker_id=services.worker_id)  # fmt: skip
    ended = await end(Ending(queue, job.job_id, None, "end", JobStatus.FAILED, fields, entry))
    if ended.moved:
        log.warning("job failed", attempt=job.attempt, code=error.code, error=error.message)
        await ended_job(services, job.job_id, job.plan, JobStatus.FAILED, None, job.callback_url)
