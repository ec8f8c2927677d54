"""The maintenance jobs as scheduled and as run by hand: one run per slot however many workers,
schedules from the settings (UTC), `jobrunner maintenance ...`, and the quota reset."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest
from arq.worker import Worker
from redis.asyncio import Redis

from jobrunner.domain.cron import parse_cron
from jobrunner.runtime import JobRunner
from jobrunner.serializer import deserialize, serialize
from jobrunner.settings import Settings
from jobrunner.store.jobs import JobStore
from jobrunner.store.limits import Limits, billing_period, previous_period
from jobrunner.store.tenants import ApiKeys
from jobrunner.tasks.maintenance import maintenance_cron, run_once, slot_of
from jobrunner.tasks.upkeep import Report, Upkeep
from tests.clitools import Invoke, as_json


def test_cron_expressions_become_arqs_sets() -> None:
    assert parse_cron("0 2 * * *").arq_kwargs() == {"minute": {0}, "hour": {2}, "second": {0}}
    assert parse_cron("0 0 1 * *").arq_kwargs() == {
        "minute": {0},
        "hour": {0},
        "day": {1},
        "second": {0},
    }
    every = parse_cron("*/15 8-10 * * 1-5,0")
    assert every.minute == {0, 15, 30, 45} and every.hour == {8, 9, 10}
    assert every.weekday == {0, 1, 2, 3, 4, 6}  # arq counts Monday as 0; cron's 0 is Sunday
    for wrong in ("61 * * * *", "* * * *", "0 0 1 * 1", "*/0 * * * *", "a * * * *"):
        with pytest.raises(ValueError, match="cron"):
            parse_cron(wrong)


def test_schedules_come_from_the_settings(settings: Settings) -> None:
    custom = settings.model_copy(update={"cleanup_cron": "30 3 * * *"})
    jobs = {job.name: job for job in maintenance_cron(custom)}
    assert set(jobs) == {
        "maintenance.expire_jobs",
        "maintenance.prune",
        "maintenance.cleanup",
        "maintenance.reconcile",
        "maintenance.reset_quotas",
    }
    assert jobs["maintenance.reconcile"].minute is None  # every minute
    assert (jobs["maintenance.cleanup"].hour, jobs["maintenance.cleanup"].minute) == ({3}, {30})
    quotas = jobs["maintenance.reset_quotas"]
    assert (quotas.day, quotas.hour, quotas.minute) == ({1}, {0}, {0})
    with pytest.raises(ValueError, match="cleanup_cron"):
        Settings(_env_file=None, cleanup_cron="0 25 * * *")  # type: ignore[call-arg]


async def test_each_slot_runs_once_across_three_concurrent_workers(
    runner: JobRunner, settings: Settings
) -> None:
    clients = [Redis.from_url(str(settings.redis_url)) for _ in range(3)]
    ran: list[str] = []

    def ctx(worker: int, client: Redis, slot: int) -> dict[str, Any]:
        store = JobStore(client, runner.keys, record_ttl=60, result_ttl=60, idempotency_ttl=60)
        services = SimpleNamespace(
            store=store, blobs=runner.blobs, settings=settings, worker_id=f"w{worker}"
        )
        return {"services": services, "job_id": f"maintenance.prune:{slot}"}

    async def work(upkeep: Upkeep) -> Report:
        ran.append(str(upkeep.store.redis))
        await asyncio.sleep(0)  # let the other callers reach their claim meanwhile
        return {"ran": 1}

    try:
        for slot in (1_700_000_000_000, 1_700_000_060_000):
            calls = [run_once(ctx(i, c, slot), "prune", 60, work) for i, c in enumerate(clients)]
            reports = await asyncio.gather(*calls)
            assert sorted(reports, key=lambda r: r is None) == [{"ran": 1}, None, None]
        assert len(ran) == 2
        key = runner.keys.maintenance_slot("prune", 1_700_000_000_000)
        assert 0 < await runner.redis.ttl(key) <= 60
    finally:
        for client in clients:
            await client.aclose()


def test_the_slot_is_the_time_in_arqs_cron_id() -> None:
    assert slot_of({"job_id": "maintenance.cleanup:1764381600000"}) == 1764381600000
    assert slot_of({}) % 60_000 == 0


async def test_reset_quotas_drops_last_months_counters(runner: JobRunner) -> None:
    now = datetime(2026, 12, 1, 0, 0, 5, tzinfo=UTC)
    limits = Limits(runner.redis, runner.keys)
    last, this = previous_period(now), billing_period(now)
    assert (last.name, this.name) == ("2026-11", "2026-12")
    await runner.enqueue("demo.echo", {}, tenant="acme")  # a tenant with jobs
    await ApiKeys(runner.redis, runner.keys).create("keyonly", "free")  # one with a key only
    for tenant, units in (("acme", 3), ("keyonly", 2)):
        for _ in range(units):
            await limits.reserve(tenant, last, 100)
        await limits.reserve(tenant, this, 100)
    upkeep = Upkeep(runner.store, runner.blobs, runner.settings)

    report = await upkeep.reset_quotas(now)
    assert report["counters_reset"] == 2
    assert report["jobs_counted"] == {"acme": 3, "keyonly": 2}
    assert await limits.used_by(["acme", "keyonly"], last) == {"acme": 0, "keyonly": 0}
    assert await limits.used_by(["acme", "keyonly"], this) == {"acme": 1, "keyonly": 1}

    report = await upkeep.reset_quotas(now, current=True, tenant="acme")
    assert report["jobs_counted"] == {"acme": 1}
    assert await limits.used_by(["acme", "keyonly"], this) == {"acme": 0, "keyonly": 1}


def test_maintenance_commands_print_what_they_did(invoke: Invoke) -> None:
    for command in ("cleanup", "prune", "reconcile", "reset-quotas"):
        done = invoke("maintenance", command)
        assert done.exit_code == 0, done.stderr
        assert done.stdout.startswith(f"{command}: done in "), done.stdout
    cleanup = invoke("maintenance", "cleanup")
    assert "jobs pruned" in cleanup.stdout and "uploads deleted" in cleanup.stdout
    report = as_json(invoke("maintenance", "cleanup", "--json"))
    assert report["job"] == "cleanup" and report["jobs_pruned"] == 0
    quotas = as_json(invoke("maintenance", "reset-quotas", "--json"))
    assert quotas["counters_reset"] == 0 and quotas["jobs_counted"] == {}
    assert quotas["note"] == "nothing to reset"
    assert "nothing to reset" in invoke("maintenance", "reset-quotas").stdout
    assert json.dumps(quotas)


async def test_arqs_cron_job_id_still_ends_with_the_scheduled_time(
    runner: JobRunner, settings: Settings
) -> None:
    """slot_of reads the slot from arq's unique cron job id ('<name>:<ms>'): arq's format,
    not ours, so this fails loudly if an arq release changes it."""
    jobs = [j for j in maintenance_cron(settings) if j.name == "maintenance.reconcile"]
    queue = runner.keys.maintenance_queue
    worker = Worker(
        [],
        queue_name=queue,
        redis_pool=runner.redis,
        cron_jobs=jobs,
        handle_signals=False,
        timezone=UTC,
        job_serializer=serialize,
        job_deserializer=deserialize,
    )
    now = datetime.now(tz=UTC)
    await worker.run_cron(now, delay=0.5)  # works out the next run
    await worker.run_cron(now, delay=61)  # within two windows of it: enqueued
    (job_id,) = [bytes(m).decode() for m in await runner.redis.zrange(queue, 0, -1)]
    slot = slot_of({"job_id": job_id})
    assert job_id == f"maintenance.reconcile:{slot}"
    # every worker works out the same time: the minute, plus arq's fixed microsecond offset
    assert slot % 60_000 == jobs[0].microsecond // 1000
    assert 0 < slot - now.timestamp() * 1000 <= 60_000
