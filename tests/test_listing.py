"""Job pages from the indices (store/listing.py): every mix of filters gives exactly the jobs a
full scan would, newest first, whatever the walk's budget; tenant sets stay the tenant's; the
cross-tenant and plan indices follow status changes and are pruned with the rest."""

from __future__ import annotations

import itertools
import random
import time

import pytest

from jobrunner.domain.models import JobRecord
from jobrunner.domain.status import JobStatus
from jobrunner.errors import InvalidInputError
from jobrunner.runtime import JobRunner
from jobrunner.store.cleanup import IndexPrune
from jobrunner.store.listing import JobFilter, JobIndex
from jobrunner.store.pickup import Pickup

TENANTS = ("acme", "globex", "initech")
PLANS = ("pro", "free")
TASKS = ("demo.echo", "demo.sleep")


@pytest.fixture
async def jobs(runner: JobRunner) -> list[JobRecord]:
    """60 jobs over tenants, plans and tasks, some cancelled; created oldest first."""
    rng = random.Random(7)
    made: list[JobRecord] = []
    for i in range(60):
        made.append(
            await runner.enqueue(
                rng.choice(TASKS),
                {"seconds": 0} if i % 2 else {},
                tenant=rng.choice(TENANTS),
                plan=rng.choice(PLANS),
                defer_seconds=600,
            )
        )
    for record in made[::4]:
        await runner.cancel(record.id)
    return [await runner.get(r.id) for r in made]


def expected(jobs: list[JobRecord], f: JobFilter) -> list[str]:
    """What a full scan finds, newest first."""
    found = [
        j
        for j in jobs
        if (f.tenant is None or j.tenant == f.tenant)
        and (f.status is None or j.status == f.status)
        and (f.task is None or j.task == f.task)
        and (f.plan is None or j.plan == f.plan)
    ]
    return [j.id for j in sorted(found, key=lambda j: (j.created_at, j.id), reverse=True)]


async def read_all(index: JobIndex, f: JobFilter, limit: int) -> tuple[list[str], int]:
    """Every page in turn; (ids, pages read)."""
    ids: list[str] = []
    cursor: str | None = None
    for pages in itertools.count(1):
        page = await index.page(f, cursor, limit)
        assert len(page.items) <= limit
        ids += [r.id for r in page.items]
        if page.cursor is None:
            return ids, pages
        cursor = page.cursor
    raise AssertionError("unreachable")


FILTERS = [
    JobFilter(tenant, status, task, plan)
    for tenant in (None, "acme")
    for status in (None, JobStatus.QUEUED, JobStatus.CANCELLED)
    for task in (None, "demo.sleep")
    for plan in (None, "free")
]


@pytest.mark.parametrize("budget", [3, 5000])
async def test_every_mix_of_filters_matches_a_full_scan(
    runner: JobRunner, jobs: list[JobRecord], budget: int
) -> None:
    """A budget of 3 entries a call forces walks to stop and go on from their cursor."""
    index = JobIndex(runner.store, walk_budget=budget)
    for f in FILTERS:
        ids, _ = await read_all(index, f, limit=4)
        assert ids == expected(jobs, f), f


async def test_one_filter_set_pages_by_rank_with_an_exact_total(
    runner: JobRunner, jobs: list[JobRecord]
) -> None:
    index = JobIndex(runner.store)
    f = JobFilter(tenant="globex")
    first = await index.page(f, None, 5)
    assert first.total == len(expected(jobs, f)) and first.first == 0
    assert first.cursor == "0.5"
    second = await index.page(f, first.cursor, 5)
    assert second.first == 5 and [r.id for r in second.items] == expected(jobs, f)[5:10]
    walked = await index.page(JobFilter(tenant="globex", plan="pro"), None, 5)
    assert walked.total is None and walked.examined >= len(walked.items)


async def test_a_tenant_filter_never_returns_another_tenants_job(
    runner: JobRunner, jobs: list[JobRecord]
) -> None:
    index = JobIndex(runner.store)
    for f in FILTERS:
        scoped = JobFilter("initech", f.status, f.task, f.plan)
        ids, _ = await read_all(index, scoped, limit=50)
        assert {r.tenant for r in await runner.store.get_many(ids)} <= {"initech"}


@pytest.mark.parametrize("cursor", ["x", "1.2.3", "9.0", "-1.0", "0.abc"])
async def test_a_malformed_cursor_is_refused(runner: JobRunner, cursor: str) -> None:
    with pytest.raises(InvalidInputError):
        await JobIndex(runner.store).page(JobFilter(), cursor, 5)


async def test_status_counts_for_one_tenant_or_all(
    runner: JobRunner, jobs: list[JobRecord]
) -> None:
    index = JobIndex(runner.store)
    everyone = await index.counts_by_status(None)
    assert everyone[JobStatus.CANCELLED] == 15 and everyone[JobStatus.QUEUED] == 45
    acme = await index.counts_by_status("acme")
    assert sum(acme.values()) == sum(1 for j in jobs if j.tenant == "acme")
    assert await index.tenants() == sorted({j.tenant for j in jobs})


async def test_pruning_drops_the_cross_tenant_and_plan_entries(runner: JobRunner) -> None:
    job = await runner.enqueue("demo.echo", {}, tenant="acme", plan="pro", defer_seconds=600)
    await runner.cancel(job.id)
    index = JobIndex(runner.store)
    assert [r.id for r in (await index.page(JobFilter(plan="pro"), None, 10)).items] == [job.id]
    later = (job.created_at.timestamp() + runner.settings.record_ttl_seconds + 60) * 1000
    await runner.redis.delete(runner.keys.job(job.id))  # as the record TTL would
    assert (await IndexPrune(runner.store, batch=100).run(later)).jobs == 1
    keys = runner.keys
    for key in (
        keys.tenant_index("*"),
        keys.status_index("*", "cancelled"),
        keys.task_index("*", "demo.echo"),
        keys.plan_index("pro"),
        keys.tenant_index("acme"),
    ):
        assert await runner.redis.zcard(key) == 0, key


async def test_a_client_adds_each_tenant_to_the_tenants_set_once(
    runner: JobRunner,
) -> None:
    await runner.enqueue("demo.echo", {}, tenant="acme")
    await runner.redis.srem(runner.keys.tenants, "acme")  # type: ignore[misc]
    await runner.enqueue("demo.echo", {}, tenant="acme")  # known to this client: no SADD
    assert await JobIndex(runner.store).tenants() == []
    await runner.enqueue("demo.echo", {}, tenant="zeta")
    assert await JobIndex(runner.store).tenants() == ["zeta"]


async def test_running_jobs_of_every_tenant_are_listed_and_counted_from_the_tenants_sets(
    runner: JobRunner,
) -> None:
    made = [
        await runner.enqueue("demo.echo", {}, tenant=TENANTS[i % 3], plan="free") for i in range(7)
    ]
    s = runner.store
    pickup = Pickup(
        runner.redis, s.keys, record_ttl=s.record_ttl, result_ttl=s.result_ttl, tasks=["demo.echo"]
    )
    claimed, _ = await pickup.claim(
        runner.keys.queue("free"), wanted=5, now_ms=int(time.time() * 1000), scan=100,
        lease_ms=30_000, worker_id="w",
    )  # fmt: skip
    assert len(claimed) == 5
    every = runner.keys.status_index("*", JobStatus.RUNNING)
    assert await runner.redis.zcard(every) == 0  # starting a job writes only its tenant's set
    jobs = [await runner.get(r.id) for r in made]
    index = JobIndex(runner.store)
    for f in (
        JobFilter(status=JobStatus.RUNNING),
        JobFilter(status=JobStatus.RUNNING, plan="free"),
    ):
        ids, _ = await read_all(index, f, limit=2)
        assert ids == expected(jobs, f) and len(ids) == 5
    first = await index.page(JobFilter(status=JobStatus.RUNNING), None, 2)
    assert first.total == 5
    counts = await index.counts_by_status(None)
    assert (counts[JobStatus.RUNNING], counts[JobStatus.QUEUED]) == (5, 2)
    listed = await runner.list(None, status=JobStatus.RUNNING, limit=3)
    assert (listed.total, [j.id for j in listed.items]) == (5, ids[:3])
    mine = await index.counts_by_status("acme")
    assert mine[JobStatus.RUNNING] == sum(j.tenant == "acme" for j in jobs if j.status == "running")
