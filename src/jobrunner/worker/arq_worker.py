"""arq's Worker, extended: woken on enqueue, claims a batch per round trip, short renewable lease.

Everything else (running the coroutine, retries via ``Retry``, abort, finishing) stays arq's.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import Any

import structlog
from arq.connections import ArqRedis
from arq.utils import timestamp_ms
from arq.worker import Function, Worker
from redis.exceptions import RedisError

from jobrunner.serializer import deserialize, serialize
from jobrunner.store.claims import Claimer
from jobrunner.worker.capacity import SharedCapacity
from jobrunner.worker.missing_task import TaskTable

log = structlog.get_logger("jobrunner.worker")


class JobRunnerWorker(Worker):
    """Consumes one arq queue inside a multi-queue process, within a shared capacity.

    arq sleeps ``poll_delay`` between polls (0-500 ms of added latency); this worker instead
    waits on ``wake``, an event set when a job is enqueued on its queue, a cancel is requested
    or one of its own jobs finishes, and polls at ``idle_poll_seconds`` only as a fallback
    (deferred jobs, missed messages).
    """

    def __init__(
        self,
        functions: Sequence[Function],
        *,
        queue_name: str,
        plan: str,
        capacity: SharedCapacity,
        redis_pool: ArqRedis,
        lease_seconds: float,
        idle_poll_seconds: float,
        scan_limit: int,
        wake: asyncio.Event,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            functions,
            queue_name=queue_name,
            redis_pool=redis_pool,
            max_jobs=capacity.total,  # the real limit is the shared capacity, checked per poll
            handle_signals=False,
            poll_delay=0,
            allow_abort_jobs=True,
            keep_result=0,
            max_tries=1_000_000,  # jobrunner decides retries itself (see worker.execution)
            job_serializer=serialize,
            job_deserializer=deserialize,
            **kwargs,
        )
        # arq sets the lease to the longest function timeout + 10 s and never renews it; ours is
        # short and renewed by the runner's heartbeat, so a dead worker's jobs return quickly.
        self.in_progress_timeout_s = lease_seconds
        self.functions = TaskTable(self.functions)  # a task not here: worker/missing_task.py
        self.plan = plan
        self.capacity = capacity
        capacity.add_waker(wake)
        self.wake = wake
        self.idle_poll_seconds = idle_poll_seconds
        self.scan_limit = scan_limit
        self._claimer = Claimer(redis_pool)

    async def _poll_iteration(self) -> None:
        try:
            await self._poll_once()
        except (RedisError, OSError) as exc:
            # arq's loop would die here; a worker should outlive a Redis restart instead
            log.warning("redis unavailable; polling again shortly", error=str(exc),
                        queue=self.queue_name)  # fmt: skip
            await asyncio.sleep(1.0)

    async def _poll_once(self) -> None:
        self.wake.clear()
        started = 0
        idle = self.idle_poll_seconds
        wanted = self.capacity.free_for(self.plan) if self.allow_pick_jobs else 0
        if wanted > 0:
            started, next_due = await self._claim_and_start(wanted)
            if next_due is not None:  # a deferred job or a retry: sleep until it is due
                idle = min(idle, max(next_due - timestamp_ms(), 1) / 1000)
        if self.allow_abort_jobs:
            await self._cancel_aborted_jobs()
        for job_id, t in list(self.tasks.items()):
            if t.done():
                del self.tasks[job_id]
                t.result()  # surfaces errors raised inside arq's run_job
        await self.heart_beat()
        if not started:
            # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancellation
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(idle):
                    await self.wake.wait()

    async def _claim_and_start(self, free_slots: int) -> tuple[int, int | None]:
        claimed, next_due = await self._claimer.claim(
            self.queue_name,
            wanted=free_slots,
            now_ms=timestamp_ms(),
            scan=max(self.scan_limit, free_slots * 10),
            lease_ms=int(self.in_progress_timeout_s * 1000),
        )
        # a full batch means more may be waiting: the queue then reserves its whole share
        self.capacity.started(self.plan, len(claimed), more_waiting=len(claimed) == free_slots)
        for job_id, score in claimed:
            await self.sem.acquire()  # never waits: we claimed at most the free slots
            self.job_counter += 1
            task = self.loop.create_task(self.run_job(job_id, score))
            task.add_done_callback(lambda _: self._release_sem_dec_counter_on_complete())
            self.tasks[job_id] = task
        return len(claimed), next_due

    def _release_sem_dec_counter_on_complete(self) -> None:
        super()._release_sem_dec_counter_on_complete()
        self.capacity.finished(self.plan)  # wakes every queue: a slot is free now

    @property
    def running_job_ids(self) -> list[str]:
        return [job_id for job_id, t in self.tasks.items() if not t.done()]
