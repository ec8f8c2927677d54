"""The maintenance jobs themselves, run by the cron (tasks/maintenance.py) and by
``jobrunner maintenance`` alike; each returns what it did, counted per kind.

- ``prune``: index entries (and any leftover record, audit trail, results) of finished jobs
  whose records have expired, so ``list`` totals stay true.
- ``cleanup``: ``prune``, then the blobs past retention: uploads after
  JOBRUNNER_UPLOAD_RETENTION_HOURS, a job's outputs once its result is gone.
- ``reconcile``: records and arq's queue agree (store/reconcile.py); webhook deliveries a dead
  process did not enqueue are enqueued (the callbacks outbox, store/outbox.py).
- ``reset_quotas``: the monthly per-tenant job counters of the API's quotas.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from arq.jobs import serialize_job

from jobrunner.callbacks import Callbacks
from jobrunner.serializer import serialize
from jobrunner.settings import Settings
from jobrunner.store.blobs import BlobStore
from jobrunner.store.cleanup import BlobSweep, CallTimer, IndexPrune, PruneCounts
from jobrunner.store.jobs import JobStore
from jobrunner.store.limits import Limits, billing_period, previous_period
from jobrunner.store.reconcile import ArqPayload, Reconciler
from jobrunner.store.tenants import ApiKeys

__all__ = ["Report", "Upkeep"]

Report = dict[str, Any]


def _timing(report: Report, timers: list[CallTimer], started: float) -> Report:
    report["redis_calls"] = sum(t.calls for t in timers)
    report["longest_call_ms"] = round(max((t.longest_s for t in timers), default=0.0) * 1000, 2)
    report["seconds"] = round(time.perf_counter() - started, 3)
    return report


def _prune_report(counts: PruneCounts) -> Report:
    return {
        "jobs_pruned": counts.jobs,
        "index_entries": counts.index_entries,
        "leftover_keys": counts.keys,
        "records_still_alive": counts.alive,
        "stale_aborts": counts.aborts,
    }


def arq_payload(settings: Settings) -> ArqPayload:
    """arq's job payload rebuilt from a record (what admission wrote), for a lost arq job key."""

    def build(fields: Mapping[str, str]) -> tuple[bytes, int]:
        expires = fields.get("expires_at")
        kwargs = {"expires_ms": float(expires)} if expires else {}
        created = int(float(fields.get("created_at") or time.time() * 1000))
        payload = serialize_job(fields["task"], (), kwargs, None, created, serializer=serialize)
        return payload, settings.job_key_ttl_seconds * 1000

    return build


@dataclass(frozen=True)
class Upkeep:
    """Maintenance over one deployment's Redis and blob store."""

    store: JobStore
    blobs: BlobStore
    settings: Settings
    callbacks: Callbacks | None = None  # webhooks of the jobs it ends (None: none sent)

    async def prune(self, now_ms: float | None = None) -> Report:
        started = time.perf_counter()
        prune = IndexPrune(self.store, batch=self.settings.maintenance_batch)
        counts = await prune.run(time.time() * 1000 if now_ms is None else now_ms)
        return _timing(_prune_report(counts), [counts.timer], started)

    async def cleanup(self, now_ms: float | None = None) -> Report:
        started = time.perf_counter()
        now_ms = time.time() * 1000 if now_ms is None else now_ms
        s = self.settings
        pruned = await IndexPrune(self.store, batch=s.maintenance_batch).run(now_ms)
        sweep = BlobSweep(
            self.store.redis,
            self.store.keys,
            batch=s.maintenance_batch,
            output_wait_s=s.result_ttl_seconds,
        )
        blobs = await sweep.run(now_ms, self.blobs.delete)
        report = _prune_report(pruned) | {
            "uploads_deleted": blobs.uploads,
            "outputs_deleted": blobs.outputs,
            "outputs_kept_with_result": blobs.kept,
            "blob_delete_failures": blobs.failed,
        }
        return _timing(report, [pruned.timer, blobs.timer], started)

    async def reconcile(self, now_ms: float | None = None) -> Report:
        started = time.perf_counter()
        s = self.settings
        reconciler = Reconciler(
            self.store,
            queues=[self.store.keys.queue(plan) for plan in s.plans],
            batch=s.maintenance_batch,
            grace_ms=s.reconcile_grace_seconds * 1000,
            payload=arq_payload(s),
        )
        now_ms = time.time() * 1000 if now_ms is None else now_ms
        counts, ended = await reconciler.run(now_ms)
        resent = 0
        if self.callbacks is not None:
            for record in ended:
                await self.callbacks.job_ended(record)
            resent = await self.callbacks.resend_due(
                now_ms, grace_ms=s.reconcile_grace_seconds * 1000, limit=s.maintenance_batch
            )
        timer = CallTimer(counts.calls, counts.longest_s)
        report = {
            "looked_at": counts.looked_at,
            "running_requeued": counts.requeued,
            "running_failed": counts.failed,
            "running_cancelled": counts.cancelled,
            "queued_reenqueued": counts.reenqueued,
            "orphans_dropped": counts.orphans_dropped,
            "changed_meanwhile": counts.left_alone,
            "webhooks_resent": resent,
        }
        return _timing(report, [timer], started)

    async def reset_quotas(
        self, now: datetime | None = None, *, current: bool = False, tenant: str | None = None
    ) -> Report:
        """Drop the counters of the month before ``now`` (the new month's start from zero by
        themselves: a counter is kept per month); ``current`` drops this month's too."""
        now = now or datetime.now(tz=UTC)
        periods = [previous_period(now)] + ([billing_period(now)] if current else [])
        tenants = [tenant] if tenant else await self._tenants()
        dropped = await Limits(self.store.redis, self.store.keys).reset(tenants, periods)
        reset = sum(len(by_period) for by_period in dropped.values())
        return {
            "periods": [p.name for p in periods],
            "tenants_looked_at": len(tenants),
            "counters_reset": reset,
            "jobs_counted": {t: sum(by_period.values()) for t, by_period in dropped.items()},
            "note": "" if reset else "nothing to reset",
        }

    async def _tenants(self) -> list[str]:
        """Every tenant with jobs or an API key."""
        redis = self.store.redis
        with_jobs = await redis.smembers(self.store.keys.tenants)  # type: ignore[misc]
        names = {bytes(m).decode() for m in with_jobs}
        names |= {key.tenant for key in await ApiKeys(redis, self.store.keys).list()}
        return sorted(names)
