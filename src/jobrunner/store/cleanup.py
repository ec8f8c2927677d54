"""The cleanup's Redis side: what finished jobs and retired blobs leave behind, in bounded
batches (one short Lua call each) repeated until nothing is due.

A finished job joins the ``finished`` zset (transition.lua); once its record TTL has passed,
``prune_finished.lua`` removes its entries from every index (so ``list`` totals stay true) and
deletes whatever of its record, audit trail and results is still there. A blob joins the
``blobs:expiring`` zset when it is recorded (blobindex.py); ``blobs_due.lua`` hands out the
ones due, the caller deletes each from the blob store, then its entry.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from importlib import resources
from typing import TypeVar

import structlog
from redis.asyncio import Redis

from jobrunner.domain.status import TERMINAL
from jobrunner.store.jobs import JobStore
from jobrunner.store.keys import ALL_TENANTS, ARQ_ABORT, Keys, arq_result, arq_retry

__all__ = ["BlobSweep", "CallTimer", "IndexPrune", "PruneCounts", "SweepCounts"]

ABORT_KEEP_MS = 60_000  # arq never prunes its abort set (arq issue #485); older aborts are done
CLAIM_MS = 3_600_000  # a claimed blob not deleted within this is handed out again
OWNER_MARGIN_MS = 86_400_000
DELETE_CONCURRENCY = 16  # blobs deleted at once (an object store answers each in ~10-50 ms)
_TERMINAL = ",".join(sorted(TERMINAL))
T = TypeVar("T")
log = structlog.get_logger("jobrunner.maintenance")


def _lua(name: str) -> str:
    return resources.files("jobrunner.store").joinpath(f"lua/{name}.lua").read_text()


@dataclass
class CallTimer:
    """How many maintenance Redis calls ran and the longest one (seconds, as the caller saw)."""

    calls: int = 0
    longest_s: float = 0.0

    def add(self, seconds: float) -> None:
        self.calls += 1
        self.longest_s = max(self.longest_s, seconds)


async def _timed(timer: CallTimer, call: Awaitable[T]) -> T:
    started = time.perf_counter()
    try:
        return await call
    finally:
        timer.add(time.perf_counter() - started)


@dataclass
class PruneCounts:
    jobs: int = 0  # finished jobs whose traces were removed
    keys: int = 0  # records, audit trails and results still there (without a TTL)
    index_entries: int = 0
    alive: int = 0  # records kept longer than the record TTL: looked at again later
    aborts: int = 0
    timer: CallTimer = field(default_factory=CallTimer)


class IndexPrune:
    """Removes what finished jobs leave once their records have expired."""

    def __init__(self, store: JobStore, *, batch: int) -> None:
        self.store = store
        self.batch = batch
        self._script = store.redis.register_script(_lua("prune_finished"))
        k = store.keys
        self._templates = "\n".join(
            [
                k.job("{id}"),
                k.audit("{id}"),
                k.result("{id}"),
                arq_retry("{id}"),
                arq_result("{id}"),
                k.tenant_index("{tenant}"),
                k.status_index("{tenant}", "{status}"),
                k.task_index("{tenant}", "{task}"),
                k.plan_index("{plan}"),
            ]
        )

    async def run(self, now_ms: float) -> PruneCounts:
        """Batch after batch until no finished job is past the record TTL."""
        counts = PruneCounts()
        ttl_ms = self.store.record_ttl * 1000
        while True:
            args: list[str | float] = [now_ms - ttl_ms, self.batch, now_ms, ttl_ms]
            args += [self._templates, ALL_TENANTS, _TERMINAL]
            call = self._script(keys=[self.store.keys.finished], args=args)
            seen, jobs, keys, removed, alive = await _timed(counts.timer, call)
            counts.jobs += int(jobs)
            counts.keys += int(keys)
            counts.index_entries += int(removed)
            counts.alive += int(alive)
            if int(seen) < self.batch:
                break
        abort_cutoff = now_ms - ABORT_KEEP_MS
        call_aborts = self.store.redis.zremrangebyscore(ARQ_ABORT, "-inf", abort_cutoff)
        counts.aborts = int(await _timed(counts.timer, call_aborts))
        return counts


@dataclass
class SweepCounts:
    uploads: int = 0
    outputs: int = 0
    kept: int = 0  # outputs whose job's result still lives: due again when it expires
    failed: int = 0  # the blob store refused: handed out again by a later run
    timer: CallTimer = field(default_factory=CallTimer)


class BlobSweep:
    """Hands out the blobs past retention; ``delete`` removes one from the blob store."""

    def __init__(self, redis: Redis, keys: Keys, *, batch: int, output_wait_s: int) -> None:
        self.redis = redis
        self.keys = keys
        self.batch = batch
        self.output_wait_ms = output_wait_s * 1000
        self._script = redis.register_script(_lua("blobs_due"))

    async def run(self, now_ms: float, delete: Callable[[str], Awaitable[None]]) -> SweepCounts:
        counts = SweepCounts()
        k = self.keys
        args: list[str | float] = [
            now_ms,
            self.batch,
            k.job("{id}"),
            k.result("{id}"),
            CLAIM_MS,
            self.output_wait_ms,
            _TERMINAL,
            k.blob_owner("{id}"),
            OWNER_MARGIN_MS,
            arq_result("{id}"),
        ]
        while True:
            reply = await _timed(counts.timer, self._script(keys=[k.blob_expiry], args=args))
            seen, kept, claimed = int(reply[0]), int(reply[1]), reply[2:]
            counts.kept += kept
            pairs = [(claimed[i].decode(), claimed[i + 1]) for i in range(0, len(claimed), 2)]
            gate = asyncio.Semaphore(DELETE_CONCURRENCY)
            deleted = await asyncio.gather(*(self._delete(gate, ref, delete) for ref, _ in pairs))
            done = [(ref, member) for (ref, member), ok in zip(pairs, deleted, strict=True) if ok]
            counts.failed += len(pairs) - len(done)
            if done:
                await _timed(counts.timer, self._forget(done))
            counts.uploads += sum(member.endswith(b"\t") for _, member in done)
            counts.outputs += sum(not member.endswith(b"\t") for _, member in done)
            if seen < self.batch:
                return counts

    async def _delete(
        self, gate: asyncio.Semaphore, ref: str, delete: Callable[[str], Awaitable[None]]
    ) -> bool:
        async with gate:
            try:
                await delete(ref)
            except Exception as exc:  # the entry is handed out again by a run an hour from now
                log.warning("blob not deleted", code="blob_delete_failed", ref=ref, error=str(exc))
                return False
        return True

    async def _forget(self, done: list[tuple[str, bytes]]) -> None:
        """The deleted blobs' entries and owner hashes, in one round trip."""
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.zrem(self.keys.blob_expiry, *(member for _, member in done))
            pipe.delete(*(self.keys.blob_owner(_blob_id(ref)) for ref, _ in done))
            await pipe.execute()


def _blob_id(ref: str) -> str:
    return ref.split("://", 1)[-1].split("/", 1)[0]
