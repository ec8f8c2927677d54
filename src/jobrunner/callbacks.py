"""When a job with a ``callback_url`` ends, delivering its webhook becomes a job of its own.

``Callbacks.job_ended`` is called wherever a job becomes terminal: the worker's outcomes
(succeeded, failed, cancelled while running, expired at pickup), ``JobRunner.cancel`` for a
waiting job, and the expiry cron. It enqueues ``jobrunner.deliver_webhook`` in the job's plan
with one round trip, under an idempotency key, so a job gets one delivery job however often it
is reported ended. The delivery job retries with backoff like any other job.

The script that made the job terminal also put it in the callbacks outbox (store/outbox.py);
the entry goes once the delivery job exists. A process that dies in between leaves the entry,
and ``resend_due`` (run by the reconcile cron) enqueues the delivery then.
"""

from __future__ import annotations

import asyncio
import time

import structlog
from redis.exceptions import RedisError

from jobrunner.admission import Admission
from jobrunner.domain.models import JobRecord
from jobrunner.errors import JobNotFoundError, JobRunnerError
from jobrunner.registry import Registry
from jobrunner.settings import Settings
from jobrunner.store.jobs import JobStore
from jobrunner.store.outbox import CallbackOutbox
from jobrunner.submission import EnqueueRequest

__all__ = ["WEBHOOK_TASK", "Callbacks"]

WEBHOOK_TASK = "jobrunner.deliver_webhook"
log = structlog.get_logger("jobrunner.webhooks")


class Callbacks:
    """Schedules webhook deliveries for jobs that end."""

    def __init__(self, settings: Settings, registry: Registry, store: JobStore) -> None:
        self._registry = registry
        self._store = store
        self._admission = Admission(settings, registry, store.keys)
        self._deadline = settings.redis_timeout_seconds * 2
        self._outbox = CallbackOutbox(store.redis, store.keys)

    async def job_ended(self, record: JobRecord) -> None:
        """Enqueue the delivery of ``record``'s final state if it has a callback_url.

        Never raises for a Redis failure: the job's own outcome is already stored, so the
        failure is logged (with the job id) rather than turned into an error of the caller's.
        """
        if record.callback_url is None or not record.is_terminal:
            return
        try:
            async with asyncio.timeout(self._deadline):
                if WEBHOOK_TASK not in self._registry:
                    log.warning("callback_url not delivered: the registry has no webhook task",
                                job_id=record.id, task=WEBHOOK_TASK)  # fmt: skip
                else:
                    delivery = await self._enqueue(record)
                    log.info("webhook delivery enqueued", job_id=record.id, delivery_id=delivery)
                await self._outbox.done(record.id)
        except (JobRunnerError, RedisError, OSError, TimeoutError) as exc:
            log.error("webhook delivery not enqueued; the reconcile cron tries again",
                      job_id=record.id, tenant=record.tenant,
                      error=str(exc) or type(exc).__name__)  # fmt: skip

    async def resend_due(self, now_ms: float, *, grace_ms: float, limit: int) -> int:
        """Enqueue the deliveries of jobs that ended over ``grace_ms`` ago and are still in the
        outbox (their process died before it enqueued them); how many were enqueued again."""
        resent = 0
        for job_id in await self._outbox.due(now_ms - grace_ms, limit):
            try:
                record = await self._store.get(job_id)
            except JobNotFoundError:  # expired with its record: nothing left to deliver
                await self._outbox.done(job_id)
                continue
            log.warning("webhook delivery was not enqueued when the job ended; enqueuing it now",
                        job_id=job_id, tenant=record.tenant)  # fmt: skip
            await self.job_ended(record)
            resent += 1
        return resent

    async def _enqueue(self, record: JobRecord) -> str:
        request = EnqueueRequest(
            task=WEBHOOK_TASK,
            params={"job_id": record.id},
            tenant=record.tenant,
            plan=record.plan,
            priority=record.priority,
            correlation_id=record.correlation_id,
            idempotency_key=f"webhook:{record.id}",
        )
        admitted = self._admission.admit(request, time.time() * 1000)
        wake = [admitted.queue] if admitted.ready_now else []
        [(delivery_id, _)] = await self._store.create_many(
            [(admitted.new, admitted.arq_entry())], wake
        )
        return delivery_id
