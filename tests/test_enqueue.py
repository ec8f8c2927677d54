"""Enqueue through arq, run, and every kind of bad input at the edge."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from jobrunner.domain.status import JobStatus
from jobrunner.errors import (
    InvalidInputError,
    InvalidOverrideError,
    InvalidParamsError,
    JobNotFoundError,
    ParamsTooLargeError,
    UnknownTaskError,
)
from jobrunner.runtime import JobRunner
from jobrunner.store.keys import arq_job
from jobrunner.worker.runner import WorkerRunner


async def test_echo_round_trip_records_the_whole_lifecycle(
    runner: JobRunner, worker: WorkerRunner
) -> None:
    job = await runner.enqueue(
        "demo.echo", {"sku": "A1", "n": 3}, tenant="acme", correlation_id="req-42"
    )
    assert job.status is JobStatus.QUEUED
    done = await runner.wait(job.id, timeout=10)
    assert done.status is JobStatus.SUCCEEDED
    assert done.attempts == 1
    assert done.progress == 100
    assert done.tenant == "acme"
    assert done.correlation_id == "req-42"
    assert done.started_at
    assert done.finished_at
    assert done.started_at <= done.finished_at
    assert await runner.result(job.id) == {"sku": "A1", "n": 3}
    events = [a.event for a in await runner.audit(job.id)]
    assert events == ["enqueued", "started", "succeeded"]


async def test_arq_payload_in_redis_is_json_not_pickle(runner: JobRunner) -> None:
    job = await runner.enqueue("demo.echo", {"x": 1}, ttl_seconds=60)
    raw = await runner.redis.get(arq_job(job.id))
    payload = json.loads(raw)
    assert payload["f"] == "demo.echo"
    assert "expires_ms" in payload["k"]


async def test_unknown_task_lists_the_known_ones(runner: JobRunner) -> None:
    with pytest.raises(UnknownTaskError) as info:
        await runner.enqueue("nope.task", {})
    assert "demo.echo" in info.value.message
    assert "demo.sleep" in info.value.message
    assert info.value.code == "unknown_task"


async def test_invalid_params_name_each_field(runner: JobRunner) -> None:
    with pytest.raises(InvalidParamsError) as info:
        await runner.enqueue("demo.sleep", {"seconds": -1, "steps": "many"})
    locs = {e["loc"] for e in info.value.details["errors"]}
    assert locs == {"seconds", "steps"}


async def test_params_over_the_size_limit_are_rejected(runner: JobRunner) -> None:
    big = {"blob": "x" * (runner.settings.max_params_bytes + 10)}
    with pytest.raises(ParamsTooLargeError):
        await runner.enqueue("demo.echo", big)
    assert (await runner.list()).total == 0  # nothing half-created


async def test_bad_options_are_clear_errors(runner: JobRunner) -> None:
    with pytest.raises(InvalidInputError, match="priority"):
        await runner.enqueue("demo.echo", {}, priority=99)
    with pytest.raises(InvalidInputError, match="unknown plan"):
        await runner.enqueue("demo.echo", {}, plan="platinum")
    with pytest.raises(InvalidInputError, match="tenant"):
        await runner.enqueue("demo.echo", {}, tenant="a b")
    with pytest.raises(InvalidOverrideError):
        await runner.enqueue("demo.echo", {}, timeout_seconds=10_000_000)
    with pytest.raises(InvalidOverrideError):
        await runner.enqueue("demo.echo", {}, max_tries=1000)


@pytest.mark.parametrize("job_id", ["", "nope", "../../etc", "0" * 32, "Z" * 32])
async def test_unknown_or_malformed_ids_are_not_found(runner: JobRunner, job_id: str) -> None:
    with pytest.raises(JobNotFoundError):
        await runner.get(job_id)
    with pytest.raises(JobNotFoundError):
        await runner.cancel(job_id)
    with pytest.raises(JobNotFoundError):
        await runner.audit(job_id)


async def test_deferred_job_waits_for_its_time(runner: JobRunner, worker: WorkerRunner) -> None:
    job = await runner.enqueue("demo.echo", {}, defer_seconds=0.8)
    await asyncio.sleep(0.4)
    assert (await runner.get(job.id)).status is JobStatus.QUEUED
    done = await runner.wait(job.id, timeout=5)
    assert done.status is JobStatus.SUCCEEDED
    assert done.started_at is not None
    assert done.started_at >= job.scheduled_at
    # woken at the due time, not a poll later
    assert (done.started_at - job.scheduled_at).total_seconds() < 0.3


async def test_job_not_started_within_its_ttl_expires(
    runner: JobRunner, settings: object, registry: object
) -> None:
    job = await runner.enqueue("demo.echo", {}, ttl_seconds=0.2)
    await asyncio.sleep(0.4)
    w = WorkerRunner(runner.settings, runner.registry, redis=runner.redis)
    await w.start()
    try:
        done = await runner.wait(job.id, timeout=5)
    finally:
        await w.stop(grace=0)
    assert done.status is JobStatus.EXPIRED
    assert done.attempts == 0


async def test_bulk_enqueue_creates_all_in_one_pipeline(
    runner: JobRunner, worker: WorkerRunner
) -> None:
    requests = [{"task": "demo.echo", "params": {"i": i}, "tenant": "bulk"} for i in range(200)]
    started = time.perf_counter()
    jobs = await runner.enqueue_many(requests)
    assert len({j.id for j in jobs}) == 200
    assert time.perf_counter() - started < 5
    for job in [*jobs[::20], jobs[7]]:
        done = await runner.wait(job.id, timeout=15)
        assert done.status is JobStatus.SUCCEEDED
    assert await runner.result(jobs[7].id) == {"i": 7}


async def test_bulk_enqueue_validates_everything_before_writing(runner: JobRunner) -> None:
    requests = [
        {"task": "demo.echo", "params": {}},
        {"task": "demo.sleep", "params": {"seconds": -5}},
    ]
    with pytest.raises(InvalidParamsError):
        await runner.enqueue_many(requests)
    assert (await runner.list()).total == 0


async def test_callback_url_and_retry_of_are_kept_on_the_record(runner: JobRunner) -> None:
    first = await runner.enqueue("demo.echo", {}, callback_url="https://hooks.example.com/done")
    again = await runner.enqueue("demo.echo", {}, retry_of=first.id)
    stored = await runner.get(first.id)
    assert stored.callback_url == "https://hooks.example.com/done"
    assert (await runner.get(again.id)).retry_of == first.id
    for bad in ({"callback_url": "ftp://x/y"}, {"retry_of": "not-an-id"}):
        with pytest.raises(InvalidInputError):
            await runner.enqueue("demo.echo", {}, **bad)
