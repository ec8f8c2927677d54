"""Cron maintenance, run by arq's cron on the maintenance queue of every worker process.

arq's cron gives each run a unique job id, so many workers never run the same tick twice.
"""

from __future__ import annotations

import time
from typing import Any

from arq.cron import CronJob, cron

from jobrunner.store.maintenance import expire_overdue, prune_finished


async def expire_jobs(ctx: dict[str, Any]) -> int:
    """Expire waiting jobs whose TTL has passed (and schedule their webhooks)."""
    services = ctx["services"]
    return await expire_overdue(
        services.store, time.time() * 1000, on_expired=services.callbacks.job_ended
    )


async def prune_indices(ctx: dict[str, Any]) -> int:
    """Prune index entries of jobs whose records have expired."""
    return await prune_finished(ctx["services"].store, time.time() * 1000)


def maintenance_cron() -> list[CronJob]:
    return [
        cron(expire_jobs, name="maintenance.expire_jobs", second={0, 30}, timeout=60),
        cron(
            prune_indices,
            name="maintenance.prune_indices",
            minute=set(range(0, 60, 10)),
            second=15,
            timeout=300,
        ),
    ]
