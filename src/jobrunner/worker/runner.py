"""A worker process: several queues in one event loop, heartbeats, wake-ups, graceful stop.

Each plan queue gets a ``JobRunnerWorker``; they share the process's concurrency by plan shares
(work-conserving: idle capacity is lent, a reserve is kept per queue; see domain/capacity.py),
so a backlog in ``free`` never takes the slot an ``enterprise`` job needs.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import time
import uuid
from collections.abc import Sequence
from datetime import UTC
from typing import Any

import structlog
from arq.connections import ArqRedis
from arq.cron import CronJob
from arq.worker import Worker

from jobrunner.admission import Admission
from jobrunner.callbacks import Callbacks
from jobrunner.domain.shares import split_concurrency
from jobrunner.registry import Registry
from jobrunner.settings import Settings
from jobrunner.store.blob_backends import blob_store
from jobrunner.store.blobs import BlobStore
from jobrunner.store.finishes import Finisher
from jobrunner.store.jobs import JobStore
from jobrunner.store.keys import Keys
from jobrunner.store.leases import Leases
from jobrunner.store.workers import WorkerRegistry
from jobrunner.worker.arq_worker import JobRunnerWorker, arq_functions
from jobrunner.worker.batching import FinishBatcher
from jobrunner.worker.capacity import SharedCapacity
from jobrunner.worker.execution import Services
from jobrunner.worker.wakeups import WakeListener

log = structlog.get_logger("jobrunner.worker")
RUNNING_SAMPLE = 20  # ids of running jobs a heartbeat names (the count is always exact)
ABORT_CHECK_SECONDS = 2.0  # the fallback when a cancel's wake message is lost


class WorkerRunner:
    """Runs the queues of one process until ``stop()`` (or SIGTERM/SIGINT under ``run()``)."""

    def __init__(
        self,
        settings: Settings,
        registry: Registry,
        *,
        redis: ArqRedis,
        blobs: BlobStore | None = None,
        queues: Sequence[str] | None = None,
        concurrency: int | None = None,
        cron_jobs: Sequence[CronJob] = (),
        maintenance_functions: Sequence[Any] = (),
    ) -> None:
        self.settings = settings
        self.keys = Keys(settings.key_prefix)
        self.redis = redis
        self.queues = tuple(queues or settings.worker_queues)
        self.concurrency = concurrency or settings.concurrency
        self.worker_id = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        store = JobStore.of(redis, settings)
        self.services = Services(
            store=store,
            blobs=blobs or blob_store(settings),
            settings=settings,
            worker_id=self.worker_id,
            callbacks=Callbacks(settings, registry, store),
        )
        self.registry = registry
        finisher = Finisher(
            redis, self.keys, record_ttl=store.record_ttl, result_ttl=store.result_ttl
        )
        self._batch = FinishBatcher(
            lambda endings, now: finisher.finish(endings, now, self.worker_id)
        )
        self._leases = Leases(redis, self.worker_id)
        self.slots = split_concurrency(self.concurrency, self.queues, settings.plan_shares)
        self.workers: dict[str, JobRunnerWorker] = {}
        self._cron_jobs = list(cron_jobs)
        self._maintenance_functions = list(maintenance_functions)
        self._maintenance: Worker | None = None
        self._tasks: list[asyncio.Task[Any]] = []
        self._wake = WakeListener(redis, self.keys.wake)
        self._stopped = asyncio.Event()
        self._hurry = asyncio.Event()
        self._stopping = False
        self.started_at_ms = time.time() * 1000

    def _build_workers(self) -> None:
        tasks = {t.name: t for t in self.registry}
        if not tasks:
            raise ValueError("no tasks to run: the registry is empty")
        functions = arq_functions(tasks)
        s = self.settings
        self.capacity = SharedCapacity(self.concurrency, self.slots)
        for plan in self.queues:
            queue = self.keys.queue(plan)
            self.workers[plan] = JobRunnerWorker(
                functions,
                tasks=tasks,
                services=self.services,
                end=self._batch.end,
                admission=Admission(self.settings, self.registry, self.keys),
                queue_name=queue,
                plan=plan,
                capacity=self.capacity,
                redis_pool=self.redis,
                lease_seconds=s.lease_seconds,
                idle_poll_seconds=s.poll_delay_seconds,
                scan_limit=max(1000, self.concurrency * 10),
                wake=self._wake.event_for(queue),
            )
        if self._cron_jobs:
            self._maintenance = Worker(
                self._maintenance_functions,
                queue_name=self.keys.maintenance_queue,
                redis_pool=self.redis,
                cron_jobs=self._cron_jobs,
                timezone=UTC,  # cron schedules are UTC
                handle_signals=False,
                max_jobs=2,
                keep_result=0,
                job_serializer=self.redis.job_serializer,
                job_deserializer=self.redis.job_deserializer,
                ctx={"services": self.services},
            )

    async def start(self) -> None:
        """Start consuming in background tasks of the running loop."""
        self.services.loop = asyncio.get_running_loop()
        self.started_at_ms = time.time() * 1000
        self._build_workers()
        await self._wake.start()
        arq_workers: list[Worker] = [*self.workers.values()]
        if self._maintenance:
            arq_workers.append(self._maintenance)
        for worker in arq_workers:
            worker.main_task = asyncio.create_task(worker.main())
            self._tasks.append(worker.main_task)
        self._tasks.append(asyncio.create_task(self._heartbeats()))
        self._tasks.append(asyncio.create_task(self._abort_checks()))
        await self._beat()
        log.info("worker started", worker_id=self.worker_id, slots=self.slots)

    async def run(self, *, handle_signals: bool = True) -> None:
        """Start, then run until stopped; SIGTERM/SIGINT stop gracefully (a second one: at
        once, running jobs go back to the queue)."""
        loop = asyncio.get_running_loop()
        if handle_signals:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, self.request_stop)
        await self.start()
        try:
            await self._stopped.wait()
        finally:
            await self.stop()
            if handle_signals:
                for sig in (signal.SIGTERM, signal.SIGINT):
                    loop.remove_signal_handler(sig)

    def request_stop(self) -> None:
        """Stop taking jobs and drain; asked again while draining, stop the running jobs now."""
        if self._stopped.is_set():
            if not self._hurry.is_set():
                log.warning("stop requested again: running jobs are stopped now")
            self._hurry.set()
        self._stopped.set()

    async def stop(self, grace: float | None = None) -> None:
        """Take no new jobs, let running ones finish for ``grace`` seconds, leave the rest
        to be run again (arq re-queues a cancelled job; its record goes back to queued)."""
        if self._stopping:
            return
        self._stopping = True
        self._stopped.set()
        grace = self.settings.shutdown_grace_seconds if grace is None else grace
        for worker in self.workers.values():
            worker.allow_pick_jobs = False
        await asyncio.gather(*(w.claims_done() for w in self.workers.values()))
        running = [t for w in self.workers.values() for t in w.tasks.values() if not t.done()]
        log.info("worker stopping", running=len(running), grace=grace)
        if running:
            await _drain(running, grace, self._hurry)
        for t in running:
            t.cancel()
        await asyncio.gather(*running, return_exceptions=True)
        await asyncio.gather(*(w.settle() for w in self.workers.values()))
        await _cancel_all(self._tasks)
        await self._wake.stop()
        with contextlib.suppress(Exception):
            durations, minutes = self.services.durations.drain(), self.services.minutes.drain()
            await WorkerRegistry(self.redis, self.keys).remove(self.worker_id, durations, minutes)
        try:  # the tasks' shared resources (process pools), once no job uses them
            await self.registry.close()
        except Exception:
            log.exception("closing the tasks' resources failed")
        log.info("worker stopped", worker_id=self.worker_id)

    async def __aenter__(self) -> WorkerRunner:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def running_job_ids(self) -> list[str]:
        return [j for w in self.workers.values() for j in w.running_job_ids]

    async def _beat(self) -> None:
        s = self.settings
        info = {
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "queues": list(self.queues),
            "tasks": self.registry.names(),  # advertised: see domain/task_routing.py
            "concurrency": self.concurrency,
            "started_at_ms": self.started_at_ms,
            "jobs_running": len(self.running_job_ids),
            "running_sample": self.running_job_ids[:RUNNING_SAMPLE],  # for the dashboard
            "running_by_queue": {p: len(w.running_job_ids) for p, w in self.workers.items()},
            "jobs_complete": sum(w.jobs_complete for w in self.workers.values()),
            "jobs_failed": sum(w.jobs_failed for w in self.workers.values()),
        }
        durations, minutes = self.services.durations.drain(), self.services.minutes.drain()
        try:
            await WorkerRegistry(self.redis, self.keys).beat(
                self.worker_id,
                info,
                now_ms=time.time() * 1000,
                ttl_seconds=max(s.heartbeat_seconds * 3, s.lease_seconds),
                running={w.queue_name: w.running_job_ids for w in self.workers.values()},
                lease_ms=int(s.lease_seconds * 1000),
                durations=durations,
                minutes=minutes,
            )
        except BaseException:  # added by the next beat instead
            self.services.durations.restore(durations)
            self.services.minutes.restore(minutes)
            raise

    async def _heartbeats(self) -> None:
        """Refresh the registry entry and renew the leases of running jobs."""
        interval = min(self.settings.heartbeat_seconds, self.settings.lease_seconds / 3)
        while True:
            await asyncio.sleep(interval)
            try:
                await self._beat()
            except Exception as exc:  # keep beating through a Redis blip; leases are long enough
                log.warning("heartbeat failed", error=str(exc))

    async def _abort_checks(self) -> None:
        """Cancel running attempts a cancel asked to stop: when the wake channel says so, and
        every ``ABORT_CHECK_SECONDS`` in case a message was lost."""
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(ABORT_CHECK_SECONDS):
                    await self._wake.abort.wait()
            self._wake.abort.clear()
            if not any(w.tasks for w in self.workers.values()):
                continue
            try:
                aborted = await self._leases.aborted(time.time() * 1000)
            except Exception as exc:  # a Redis blip: the next check catches up
                log.warning("abort check failed", error=str(exc))
                continue
            for worker in self.workers.values():
                worker.abort(aborted)


async def _drain(running: list[asyncio.Task[Any]], grace: float, hurry: asyncio.Event) -> None:
    """Until the running jobs are done, ``grace`` has passed or ``hurry`` is set."""
    if hurry.is_set():
        return
    waiters = [asyncio.ensure_future(asyncio.wait(running)), asyncio.ensure_future(hurry.wait())]
    await asyncio.wait(waiters, timeout=grace, return_when=asyncio.FIRST_COMPLETED)
    for waiter in waiters:  # waiting is cancelled; the jobs themselves are not
        waiter.cancel()
    await asyncio.gather(*waiters, return_exceptions=True)


async def _cancel_all(tasks: list[asyncio.Task[Any]]) -> None:
    """Cancel until done: arq's loops can absorb one cancellation in a race inside wait_for."""
    pending = {t for t in tasks if not t.done()}
    while pending:
        for t in pending:
            t.cancel()
        _, pending = await asyncio.wait(pending, timeout=1.0)
