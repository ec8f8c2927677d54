"""Records and arq's queue agree: the reconcile's Redis side.

What it relies on (and nothing more): a job is running iff its lease ``arq:in-progress:<id>``
exists; while it runs its arq queue entry may sit at any score; when it finishes, its record
becomes terminal before (or with) the lease's removal. So:

- a ``running`` record without a lease lost its worker: it goes back to ``queued`` (its arq
  entry eligible now, re-created if gone) or, with no tries left, ``failed`` (``lease_lost``);
- a ``queued``/``retrying`` record without an arq queue entry is put back in the queue;
- an arq queue entry with no record, no arq job key and no lease is dropped (and logged).

Records are found by walking the status indices of every tenant in bounded pages (no SCAN),
each page looked at in one Lua call that returns only the suspects; each fix is one Lua call
that checks again, atomically, what the page showed (the lease still absent, the record
unchanged), so a job being claimed or finished meanwhile is never touched. Changes younger
than the grace are left to the next run.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources

import structlog

from jobrunner.domain.models import AuditEntry, JobError, JobRecord
from jobrunner.domain.status import JobStatus
from jobrunner.store.codec import audit_json, decode_record, pairs_to_hash
from jobrunner.store.jobs import JobStore, Transition
from jobrunner.store.keys import ALL_TENANTS, arq_in_progress, arq_job
from jobrunner.store.scripts import record_script

__all__ = ["ArqPayload", "ReconcileCounts", "Reconciler"]

log = structlog.get_logger("jobrunner.maintenance")
# a record's fields as the page read them, and arq's payload rebuilt from them (bytes, ttl ms)
ArqPayload = Callable[[Mapping[str, str]], tuple[bytes, int]]
_FIELDS = ("status", "started_at", "attempts", "max_tries", "queue", "task", "created_at",
           "updated_at", "expires_at", "scheduled_at", "next_attempt_at",
           "cancel_requested")  # fmt: skip


def _lua(name: str) -> str:
    return resources.files("jobrunner.store").joinpath(f"lua/{name}.lua").read_text()


@dataclass
class ReconcileCounts:
    looked_at: int = 0
    requeued: int = 0  # running, lease gone: back to the queue
    failed: int = 0  # running, lease gone, no tries left
    cancelled: int = 0  # running, lease gone, a cancel had been asked for
    reenqueued: int = 0  # waiting, missing from arq's queue: put back
    orphans_dropped: int = 0  # arq entries with nothing behind them
    left_alone: int = 0  # changed between the page read and the fix (claimed, finished)
    calls: int = 0
    longest_s: float = 0.0

    def timed(self, started: float) -> None:
        self.calls += 1
        self.longest_s = max(self.longest_s, time.perf_counter() - started)


class Reconciler:
    """One reconcile pass over every running and waiting record and every plan queue."""

    def __init__(
        self,
        store: JobStore,
        *,
        queues: Sequence[str],
        batch: int,
        grace_ms: float,
        payload: ArqPayload,
    ) -> None:
        self.store = store
        self.redis = store.redis
        self.keys = store.keys
        self.queues = list(queues)
        self.batch = batch
        self.grace_ms = grace_ms
        self.payload = payload
        self._running = record_script(self.redis, "reconcile_running", with_transition=True)
        self._waiting = self.redis.register_script(_lua("reconcile_waiting"))
        self._orphans = self.redis.register_script(_lua("drop_orphans"))
        self._page = self.redis.register_script(_lua("reconcile_page"))

    async def run(self, now_ms: float) -> tuple[ReconcileCounts, list[JobRecord]]:
        """Counts per kind, and the records it ended (their webhooks are the caller's)."""
        counts = ReconcileCounts()
        ended = await self._walk(JobStatus.RUNNING, now_ms, counts)
        for status in (JobStatus.QUEUED, JobStatus.RETRYING):
            await self._walk(status, now_ms, counts)
        for queue in self.queues:
            await self._drop_orphans(queue, counts)
        if counts.requeued or counts.reenqueued:  # idle workers look at their queues now
            for queue in self.queues:
                await self.redis.publish(self.keys.wake, queue)
        return counts, ended

    async def _walk(
        self, status: JobStatus, now_ms: float, counts: ReconcileCounts
    ) -> list[JobRecord]:
        """Page through every tenant's index of ``status``; fix what a page shows wrong."""
        index, rank, ended = self.keys.status_index(ALL_TENANTS, status), 0, []
        mode = "running" if status is JobStatus.RUNNING else "waiting"
        if status is JobStatus.RUNNING:  # its own snapshot: a fix leaves the job in it
            index = self.keys.running_snapshot
            await self.store.running.refresh(into=index)
        fixed = [self.keys.job("{id}"), arq_in_progress(""), status.value, now_ms - self.grace_ms]
        while True:
            started = time.perf_counter()
            reply = await self._page(keys=[index], args=[rank, self.batch, *fixed, mode])
            counts.timed(started)
            seen, suspects = int(reply[0]), [bytes(i).decode() for i in reply[1:]]
            counts.looked_at += seen
            moved = 0
            for job_id, fields in zip(suspects, await self._read(suspects), strict=True):
                if status is not JobStatus.RUNNING:
                    await self._fix_waiting(job_id, fields, now_ms, counts)
                elif record := await self._fix_running(job_id, fields, now_ms, counts):
                    moved += 1
                    ended += [record] if record.is_terminal else []
            rank += seen if status is JobStatus.RUNNING else seen - moved
            if seen < self.batch:
                if index == self.keys.running_snapshot:
                    await self.redis.delete(index)
                return ended

    async def _read(self, ids: list[str]) -> list[dict[str, str]]:
        """The fields a fix needs of each record, in one round trip."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for job_id in ids:
                pipe.hmget(self.keys.job(job_id), list(_FIELDS))
            replies = await pipe.execute()
        return [
            {n: v.decode() for n, v in zip(_FIELDS, raw, strict=True) if v is not None}
            for raw in replies
        ]

    def _young(self, fields: Mapping[str, str], name: str, now_ms: float) -> bool:
        at = fields.get(name) or fields.get("created_at") or "0"
        return float(at) > now_ms - self.grace_ms

    async def _fix_running(
        self, job_id: str, fields: dict[str, str], now_ms: float, counts: ReconcileCounts
    ) -> JobRecord | None:
        if self._young(fields, "started_at", now_ms) or not fields.get("queue"):
            return None
        attempts, tries = int(fields.get("attempts") or 0), int(fields.get("max_tries") or 1)
        cancelled = fields.get("cancel_requested") == "1"  # asked to stop: it stops here
        back = attempts < tries and not cancelled
        change = (
            _ended(attempts, tries, now_ms, cancelled=cancelled) if not back else _requeue(attempts)
        )
        _, args = self.store.transition_call(job_id, change, now_ms)
        payload, ttl = self.payload(fields) if back else (b"", 0)
        started = time.perf_counter()
        reply = await self._running(
            keys=[arq_in_progress(job_id), arq_job(job_id), fields["queue"]],
            args=[
                *args,
                fields.get("started_at", ""),
                fields.get("attempts", ""),
                "1" if back else "0",
                int(now_ms),
                payload,
                ttl,
                job_id,
            ],
        )
        counts.timed(started)
        if int(reply[0]) != 1:
            counts.left_alone += 1
            return None
        record = decode_record(pairs_to_hash(reply[1]), job_id)
        counts.requeued += back
        counts.failed += record.status is JobStatus.FAILED
        counts.cancelled += record.status is JobStatus.CANCELLED
        log.warning("running job lost its worker", code="lease_lost", job_id=job_id,
                    tenant=record.tenant, attempt=attempts, now=record.status.value)  # fmt: skip
        return record

    async def _fix_waiting(
        self, job_id: str, fields: dict[str, str], now_ms: float, counts: ReconcileCounts
    ) -> None:
        if self._young(fields, "updated_at", now_ms) or not fields.get("queue"):
            return
        due = fields.get("next_attempt_at") or fields.get("scheduled_at") or "0"
        payload, ttl = self.payload(fields)
        at = datetime.fromtimestamp(now_ms / 1000, tz=UTC)
        status = JobStatus(fields["status"])
        note = "missing from arq's queue: put back"
        audit = AuditEntry(at=at, event="reconciled", status=status, message=note)
        seen = f"{fields.get('updated_at', '')}|{fields.get('created_at', '')}"
        started = time.perf_counter()
        done = await self._waiting(
            keys=[self.keys.job(job_id), self.keys.audit(job_id), fields["queue"],
                  arq_job(job_id), arq_in_progress(job_id)],
            args=[job_id, status.value, seen, int(max(now_ms, float(due))), payload, ttl,
                  audit_json(audit), repr(now_ms)],
        )  # fmt: skip
        counts.timed(started)
        if int(done) != 1:
            counts.left_alone += 1
            return
        counts.reenqueued += 1
        log.warning("waiting job was missing from arq's queue; put back",
                    code="queue_entry_missing", job_id=job_id, queue=fields["queue"])  # fmt: skip

    async def _drop_orphans(self, queue: str, counts: ReconcileCounts) -> None:
        rank = 0
        args: list[str | int] = [
            self.batch,
            self.keys.job("{id}"),
            arq_job(""),
            arq_in_progress(""),
        ]
        while True:
            started = time.perf_counter()
            reply = await self._orphans(keys=[queue], args=[rank, *args])
            counts.timed(started)
            seen, dropped = int(reply[0]), [bytes(i).decode() for i in reply[1:]]
            counts.looked_at += seen
            counts.orphans_dropped += len(dropped)
            for job_id in dropped:
                log.warning("arq queue entry without a record or job dropped",
                            code="orphan_queue_entry", job_id=job_id, queue=queue)  # fmt: skip
            rank += seen - len(dropped)
            if seen < self.batch:
                return


def _requeue(attempts: int) -> Transition:
    note = "its worker is gone (the lease expired): back to the queue"
    return Transition(
        target=JobStatus.QUEUED,
        fields={"worker_id": None},
        audit=AuditEntry(
            at=datetime.now(tz=UTC),
            event="lease_lost",
            status=JobStatus.QUEUED,
            attempt=attempts,
            message=note,
        ),
        increment="interruptions",
    )


def _ended(attempts: int, tries: int, now_ms: float, *, cancelled: bool) -> Transition:
    """Failed (``lease_lost``) with no tries left, or cancelled if a cancel was asked for."""
    at = datetime.now(tz=UTC)
    if cancelled:
        note = "its worker is gone (the lease expired) and a cancel was asked for"
        return Transition(
            target=JobStatus.CANCELLED,
            fields={"finished_at": now_ms, "next_attempt_at": None},
            audit=AuditEntry(
                at=at, event="cancelled", status=JobStatus.CANCELLED, attempt=attempts, message=note
            ),
        )
    error = JobError(
        type="LeaseLost",
        code="lease_lost",
        message=f"the worker of attempt {attempts} of {tries} is gone (its lease expired)",
        attempt=attempts,
    )
    return Transition(
        target=JobStatus.FAILED,
        fields={"finished_at": now_ms, "error": error, "next_attempt_at": None},
        audit=AuditEntry(
            at=at, event="failed", status=JobStatus.FAILED, attempt=attempts, error=error
        ),
    )
