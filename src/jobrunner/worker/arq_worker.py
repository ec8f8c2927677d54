"""arq's Worker, extended: woken on enqueue, claims and starts a batch of jobs in one call,
ends attempts in batched calls, short renewable lease.

arq's key layout and payload format stay (queue zset, job key, try counter, in-progress lease,
result); its per-job round trips (claim, read, finish) are replaced by store/pickup.py and
store/finishes.py, one Lua call per batch each.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Awaitable, Mapping, Sequence
from typing import Any

import structlog
from arq.connections import ArqRedis
from arq.utils import timestamp_ms
from arq.worker import Function, Worker, func
from redis.exceptions import RedisError

from jobrunner.admission import Admission
from jobrunner.domain.status import JobStatus
from jobrunner.errors import RecordCorruptError
from jobrunner.registry import Task
from jobrunner.serializer import deserialize, serialize
from jobrunner.store.finishes import Ended, Ending
from jobrunner.store.pickup import Claimed, ExpiredAtPickup, MissingAtPickup, Pickup
from jobrunner.worker.adoption import adopt
from jobrunner.worker.capacity import SharedCapacity
from jobrunner.worker.execution import EndFn, Services, attempt_of, run_claimed
from jobrunner.worker.missing_task import handle_missing
from jobrunner.worker.outcomes import ended_job, interrupted

log = structlog.get_logger("jobrunner.worker")


class JobRunnerWorker(Worker):
    """Consumes one arq queue inside a multi-queue process, within a shared capacity.

    arq sleeps ``poll_delay`` between polls (0-500 ms of added latency); this worker instead
    waits on ``wake``, an event set when a job is enqueued on its queue or a slot it waits for
    frees up, and polls at ``idle_poll_seconds`` only as a fallback (deferred jobs, missed
    messages).
    """

    def __init__(
        self,
        functions: Sequence[Function],
        *,
        tasks: Mapping[str, Task[Any]],
        services: Services,
        end: EndFn,
        admission: Admission | None = None,
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
            max_tries=1_000_000,  # jobrunner decides retries itself (see worker.outcomes)
            job_serializer=serialize,
            job_deserializer=deserialize,
            **kwargs,
        )
        # arq sets the lease to the longest function timeout + 10 s and never renews it; ours is
        # short and renewed by the runner's heartbeat, so a dead worker's jobs return quickly.
        self.in_progress_timeout_s = lease_seconds
        self.plan = plan
        self.capacity = capacity
        capacity.add_waker(plan, wake)
        self.wake = wake
        self.idle_poll_seconds = idle_poll_seconds
        self.scan_limit = scan_limit
        self.services = services
        self._tasks_by_name = tasks
        self._end = end
        self.admission = admission
        self._begun: set[str] = set()  # attempts whose coroutine has started
        self._freed: set[str] = set()  # attempts whose slot was given back (ending written)
        self._settling: set[asyncio.Future[object]] = set()  # interruptions being written
        # the claim call in flight: a stop waits for it, so no claimed job goes unseen
        self._claiming: asyncio.Future[tuple[int, int | None]] | None = None
        self._idle: float | None = None  # how long the next poll waits for a wake-up first
        self._pickup = Pickup(
            redis_pool,
            services.store.keys,
            record_ttl=services.store.record_ttl,
            result_ttl=services.store.result_ttl,
            tasks=tasks,
            # a job of a task this worker lacks is left to the workers that have it for one
            # poll interval after it is due: they sleep until exactly then
            leave_missing_ms=int(idle_poll_seconds * 1000),
        )

    def task_for(self, function_name: str) -> Task[Any] | None:
        """The one place a claimed job's function is looked up (None: this worker lacks it)."""
        return self._tasks_by_name.get(function_name)

    async def _poll_iteration(self) -> None:
        try:
            await self._poll_once()
        except (RedisError, OSError) as exc:
            # arq's loop would die here; a worker should outlive a Redis restart instead
            log.warning(
                "redis unavailable; polling again shortly", error=str(exc), queue=self.queue_name
            )
            await asyncio.sleep(1.0)

    async def _poll_once(self) -> None:
        # the wait the previous poll asked for comes first, so a wake-up goes straight on to
        # the claim (not back through arq's loop and its sleep(0): a loop iteration less)
        if self._idle is not None:
            idle, self._idle = self._idle, None
            # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancellation
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(idle):
                    await self.wake.wait()
        self.wake.clear()
        started, wanted = 0, 0
        idle = self.idle_poll_seconds
        if self.allow_pick_jobs:
            wanted = self.capacity.free_for(self.plan)
            self.capacity.waiting(self.plan, wanted <= 0)
        if wanted > 0:
            # shielded: cancelling the poll loop must not drop a claim Redis has already made
            # (its records say running; only the reply creates their attempts here)
            self._claiming = asyncio.ensure_future(self._claim_and_start(wanted))
            started, next_due = await asyncio.shield(self._claiming)
            if next_due is not None:  # a deferred job or a retry: sleep until it is due
                idle = min(idle, max(next_due - timestamp_ms(), 1) / 1000)
        await self.heart_beat()  # arq's health-check key, written once per its interval
        if started < wanted or wanted <= 0:
            self._idle = idle  # nothing more to start now: the next poll waits first

    async def _claim_and_start(self, free_slots: int) -> tuple[int, int | None]:
        jobs, next_due = await self._pickup.claim(
            self.queue_name,
            wanted=free_slots,
            now_ms=timestamp_ms(),
            # running jobs sit past the due range: a little slack covers lapsing leases
            scan=min(self.scan_limit, free_slots * 2 + 16),
            lease_ms=int(self.in_progress_timeout_s * 1000),
            worker_id=self.services.worker_id,
        )
        claimed = [j for j in jobs if isinstance(j, Claimed)]
        # a full batch means more may be waiting: the queue then reserves its whole share
        self.capacity.started(self.plan, len(claimed), more_waiting=len(claimed) == free_slots)
        for job in jobs:
            if isinstance(job, Claimed):
                self.job_counter += 1
                task = self.loop.create_task(self._run(job))
                task.add_done_callback(functools.partial(self._done, job))
                self.tasks[job.job_id] = task
            elif isinstance(job, MissingAtPickup):
                self._settle(handle_missing(self.services, self.queue_name, job, self._end))
            elif isinstance(job, ExpiredAtPickup):
                self._settle(self._expired(job))
            else:
                log.error(
                    "job record unusable; job dropped",
                    job_id=job.job_id,
                    code=RecordCorruptError.code,
                )
        return len(claimed), next_due

    async def _run(self, job: Claimed) -> None:
        self._begun.add(job.job_id)
        attempt = attempt_of(job, self.queue_name)
        if job.record is None and self.admission is not None:  # a plain arq client's job
            await adopt(self.services, self.admission, attempt, self.plan, self._end)
            return

        async def end(ending: Ending) -> Ended:
            # the task is over: its slot is free while the ending is written (with others)
            self._free(job.job_id)
            return await self._end(ending)

        status = await run_claimed(self.services, self.task_for(attempt.function), attempt, end)
        if status == JobStatus.SUCCEEDED:
            self.jobs_complete += 1
        elif status in (JobStatus.FAILED, JobStatus.CANCELLED):
            self.jobs_failed += 1
        else:  # back in the queue at a later score: the next poll sleeps until then
            self.jobs_retried += 1
            self.wake.set()

    async def _expired(self, job: ExpiredAtPickup) -> None:
        log.info("job expired before it started", job_id=job.job_id)
        await ended_job(
            self.services, job.job_id, job.plan, JobStatus.EXPIRED, None, job.callback_url
        )

    def _free(self, job_id: str) -> None:
        """Give the job's slot back (once)."""
        if job_id not in self._freed:
            self._freed.add(job_id)
            self.job_counter -= 1
            self.capacity.finished(self.plan)

    def _done(self, job: Claimed, task: asyncio.Task[None]) -> None:
        self.tasks.pop(job.job_id, None)
        self._free(job.job_id)
        self._freed.discard(job.job_id)
        if task.cancelled() and job.job_id not in self._begun:
            # cancelled before its first step (a stop right after the claim): nothing ran,
            # the job goes back to the queue as an interrupted attempt would
            ending = interrupted(attempt_of(job, self.queue_name), None)
            self._settle(self._end(ending))
        elif not task.cancelled() and task.exception() is not None:
            log.error("attempt crashed", job_id=job.job_id, exc_info=task.exception())
        self._begun.discard(job.job_id)

    def _settle(self, work: Awaitable[object]) -> None:
        """Run ``work`` in the background; ``settle()`` waits for it."""
        task = asyncio.ensure_future(work)
        self._settling.add(task)
        task.add_done_callback(self._settled)

    def _settled(self, task: asyncio.Future[object]) -> None:
        self._settling.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("background job write failed", exc_info=task.exception())

    async def claims_done(self) -> None:
        """Wait for the claim call in flight, if any (its attempts are in ``tasks`` after)."""
        if self._claiming is not None:
            await asyncio.gather(self._claiming, return_exceptions=True)

    async def settle(self) -> None:
        """Wait for the background writes of this worker (interruptions, expiries)."""
        while self._settling:
            await asyncio.gather(*self._settling, return_exceptions=True)

    def abort(self, job_ids: set[str]) -> set[str]:
        """Cancel the running attempts of ``job_ids`` (a cancel asked for them); which ran here."""
        found = {job_id for job_id in job_ids if job_id in self.tasks}
        for job_id in found:
            self.tasks[job_id].cancel()
        return found

    @property
    def running_job_ids(self) -> list[str]:
        return [job_id for job_id, t in self.tasks.items() if not t.done()]


async def _run_by_jobrunner(ctx: dict[str, Any], **kwargs: Any) -> None:
    raise RuntimeError("jobrunner's worker runs its attempts itself, never through arq's run_job")


def arq_functions(tasks: Mapping[str, Task[Any]]) -> list[Function]:
    """arq's view of the tasks (names for its bookkeeping); attempts run in ``_run``."""
    return [func(_run_by_jobrunner, name=name, max_tries=1_000_000) for name in tasks]
