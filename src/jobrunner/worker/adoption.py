"""A job a plain arq client enqueued (``ArqRedis.enqueue_job`` with our serializer) has arq's
keys but no record: the worker adopts it, writing the record an ``enqueue`` would have written
(same id, its payload's task and keyword arguments as params, the queue's plan, the default
tenant), gives its try back and puts it back due now, so the next claim starts it as any other
job. A payload that names no task of ours, or params the task refuses, fails in arq's terms
(arq's result says why) since there is no record to fail.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import structlog

from jobrunner.admission import Admission
from jobrunner.domain.models import JobError
from jobrunner.domain.status import JobStatus
from jobrunner.errors import JobRunnerError
from jobrunner.store.finishes import Ending
from jobrunner.submission import EnqueueRequest
from jobrunner.worker.execution import EndFn
from jobrunner.worker.outcomes import Attempt, Services, arq_result

__all__ = ["adopt"]

log = structlog.get_logger("jobrunner.worker")


async def adopt(
    services: Services, admission: Admission, a: Attempt, plan: str, end: EndFn
) -> None:
    job_id = a.job.job_id
    params = {k: v for k, v in a.kwargs.items() if k != "expires_ms"}
    try:
        request = EnqueueRequest(task=a.function, params=params, plan=plan, correlation_id=job_id)
        admitted = admission.admit(request, time.time() * 1000)
    except (JobRunnerError, ValueError) as exc:
        message = getattr(exc, "message", None) or str(exc)
        log.warning("plain arq job refused", job_id=job_id, task=a.function, error=message)
        error = JobError(type=type(exc).__name__, code=getattr(exc, "code", "invalid_request"),
                         message=message, attempt=a.number)  # fmt: skip
        value: dict[str, Any] = {"__error__": error.type, "message": f"{error.code}: {message}"}
        ending = Ending(a.queue, job_id, None, "end", JobStatus.FAILED, {}, "",
                        arq_result=arq_result(a, False, value))  # fmt: skip
        await end(ending)
        return
    new = dataclasses.replace(
        admitted.new, job_id=job_id, fields={**admitted.new.fields, "id": job_id}
    )
    await services.store.adopt(new, admitted.arq_entry(), a.job.attempt)
    log.info("plain arq job adopted", job_id=job_id, task=a.function)
