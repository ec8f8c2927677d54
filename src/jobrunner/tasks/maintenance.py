"""Cron maintenance, run by arq's cron on the maintenance queue of every worker process.

Every worker schedules every job; each scheduled slot runs once however many workers are up:
the first to claim ``maint:<name>:<slot ms>`` (SET NX, store/slots.py) does the work, the
others see the slot taken and return. arq's own unique cron ids alone are not enough (the id
is free again once the first run finished and kept no result). Schedules are cron expressions
in UTC from the settings (JOBRUNNER_CLEANUP_CRON, ...).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from arq.cron import CronJob, cron

from jobrunner.domain.cron import parse_cron
from jobrunner.settings import Settings
from jobrunner.store.maintenance import expire_overdue
from jobrunner.store.slots import claim_slot
from jobrunner.tasks.upkeep import Report, Upkeep

__all__ = ["maintenance_cron", "run_once", "slot_of"]

log = structlog.get_logger("jobrunner.maintenance")
HOUR = 3600
DAY = 86400


def slot_of(ctx: dict[str, Any]) -> int:
    """The scheduled time (ms) of this cron run: arq's unique cron id ends with it."""
    _, _, tail = str(ctx.get("job_id") or "").rpartition(":")
    return int(tail) if tail.isdigit() else int(time.time() // 60 * 60_000)


async def run_once(
    ctx: dict[str, Any], name: str, keep_seconds: int, work: Callable[[Upkeep], Awaitable[Report]]
) -> Report | None:
    """``work`` if this worker is the first to claim the slot; None if another one did."""
    services = ctx["services"]
    store, slot = services.store, slot_of(ctx)
    owner = str(getattr(services, "worker_id", "") or "worker")
    claimed = await claim_slot(
        store.redis, store.keys, name, slot, owner=owner, keep_seconds=keep_seconds
    )
    if not claimed:
        log.debug("maintenance slot already taken", job=name, slot_ms=slot)
        return None
    callbacks = getattr(services, "callbacks", None)
    upkeep = Upkeep(store, services.blobs, services.settings, callbacks)
    report = await work(upkeep)
    log.info("maintenance done", job=name, slot_ms=slot, **report)
    return report


async def expire_jobs(ctx: dict[str, Any]) -> Report | None:
    """Expire waiting jobs whose TTL has passed (and schedule their webhooks)."""

    async def work(upkeep: Upkeep) -> Report:
        callbacks = upkeep.callbacks
        on_expired = callbacks.job_ended if callbacks else None
        expired = await expire_overdue(upkeep.store, time.time() * 1000, on_expired=on_expired)
        return {"expired": expired}

    return await run_once(ctx, "expire", 10 * 60, work)


async def prune(ctx: dict[str, Any]) -> Report | None:
    return await run_once(ctx, "prune", HOUR, lambda upkeep: upkeep.prune())


async def cleanup(ctx: dict[str, Any]) -> Report | None:
    return await run_once(ctx, "cleanup", 2 * DAY, lambda upkeep: upkeep.cleanup())


async def reconcile(ctx: dict[str, Any]) -> Report | None:
    return await run_once(ctx, "reconcile", HOUR, lambda upkeep: upkeep.reconcile())


async def reset_quotas(ctx: dict[str, Any]) -> Report | None:
    return await run_once(ctx, "reset-quotas", 40 * DAY, lambda upkeep: upkeep.reset_quotas())


def maintenance_cron(settings: Settings) -> list[CronJob]:
    """The cron jobs every worker process schedules (on arq's maintenance-queue Worker)."""
    s = settings
    planned: list[tuple[Any, str, str, int]] = [
        (prune, "maintenance.prune", s.prune_cron, 10 * 60),
        (cleanup, "maintenance.cleanup", s.cleanup_cron, 6 * HOUR),
        (reconcile, "maintenance.reconcile", s.reconcile_cron, 5 * 60),
        (reset_quotas, "maintenance.reset_quotas", s.reset_quotas_cron, 10 * 60),
    ]
    jobs = [cron(expire_jobs, name="maintenance.expire_jobs", second={0, 30}, timeout=60)]
    for function, name, expression, timeout in planned:
        when = parse_cron(expression).arq_kwargs()
        jobs.append(cron(function, name=name, timeout=timeout, **when))  # type: ignore[arg-type]
    return jobs
