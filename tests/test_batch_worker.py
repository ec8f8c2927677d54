"""Claim-and-start and finish in batches: one Lua call each, under concurrency and crashes.

The contract other parts rely on (the reconcile job among them): a job is running iff arq's
``arq:in-progress:<id>`` lease exists (its value: the worker id); while it runs its queue entry
sits at the lease's expiry; at the end the record is terminal in the same call that removes
the lease.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import time
from dataclasses import replace

import pytest
from arq.jobs import Job
from arq.jobs import JobStatus as ArqStatus

from jobrunner.domain.models import AuditEntry, JobError
from jobrunner.domain.status import JobStatus
from jobrunner.runtime import JobRunner
from jobrunner.serializer import RemoteError, deserialize
from jobrunner.store.finishes import Ending, Finisher
from jobrunner.store.keys import arq_in_progress, arq_job, arq_result, arq_retry
from jobrunner.store.pickup import Claimed, Pickup
from jobrunner.worker.batching import FinishBatcher
from jobrunner.worker.execution import attempt_of
from jobrunner.worker.outcomes import audit
from jobrunner.worker.runner import WorkerRunner
from tests.polling import eventually, wait_running
from tests.test_worker_processes import start_arq_worker


def _pickup(runner: JobRunner) -> Pickup:
    s = runner.store
    return Pickup(
        runner.redis, s.keys, record_ttl=s.record_ttl, result_ttl=s.result_ttl, tasks=["demo.echo"]
    )


async def _enqueue(
    runner: JobRunner, n: int, task: str = "demo.echo", **params: object
) -> list[str]:
    records = await runner.enqueue_many(
        [{"task": task, "params": params or {"i": i}, "plan": "free"} for i in range(n)]
    )
    return [r.id for r in records]


async def test_a_live_lease_keeps_a_job_from_starting_twice(runner: JobRunner) -> None:
    ids = await _enqueue(runner, 5)
    queue = runner.keys.queue("free")
    now = int(time.time() * 1000)
    first, _ = await _pickup(runner).claim(
        queue, wanted=10, now_ms=now, scan=100, lease_ms=300, worker_id="w-a"
    )
    assert sorted(j.job_id for j in first if isinstance(j, Claimed)) == sorted(ids)
    for job_id in ids:
        assert await runner.redis.get(arq_in_progress(job_id)) == b"w-a"
        assert (await runner.redis.zscore(queue, job_id) or 0) >= now + 300  # out of the scan
        record = await runner.get(job_id)
        assert (record.status, record.attempts, record.worker_id) == (JobStatus.RUNNING, 1, "w-a")
        assert await runner.redis.exists(arq_retry(job_id)) == 0  # tries: the record's
    again, _ = await _pickup(runner).claim(
        queue, wanted=10, now_ms=now + 200, scan=100, lease_ms=300, worker_id="w-b"
    )
    assert again == []  # leases live: nothing to claim
    later = now + 1000  # the leases lapsed (the worker died): the jobs are due again
    await eventually(
        lambda: runner.redis.exists(*[arq_in_progress(i) for i in ids]), lambda n: n == 0
    )
    back, _ = await _pickup(runner).claim(
        queue, wanted=10, now_ms=later, scan=100, lease_ms=5000, worker_id="w-b"
    )
    assert sorted(j.job_id for j in back if isinstance(j, Claimed)) == sorted(ids)
    record = await runner.get(ids[0])
    assert (record.attempts, record.interruptions, record.worker_id) == (2, 1, "w-b")
    assert await runner.redis.exists(arq_retry(ids[0])) == 0


async def test_a_job_of_ours_starts_without_reading_arqs_payload(runner: JobRunner) -> None:
    ids = await _enqueue(runner, 1)
    deadline = await runner.enqueue("demo.echo", {"i": 9}, plan="free", ttl_seconds=600)
    payloads = {i: await runner.redis.get(arq_job(i)) for i in [*ids, deadline.id]}
    jobs, _ = await _pickup(runner).claim(
        runner.keys.queue("free"), wanted=10, now_ms=int(time.time() * 1000), scan=100,
        lease_ms=30_000, worker_id="w",
    )  # fmt: skip
    assert len(jobs) == 2
    for job in jobs:
        assert isinstance(job, Claimed) and job.payload == b""
        from_record = attempt_of(job, "free")
        from_payload = attempt_of(replace(job, payload=payloads[job.job_id]), "free")
        assert from_record.function == from_payload.function == "demo.echo"
        assert from_record.kwargs == from_payload.kwargs
        assert from_record.enqueue_ms == from_payload.enqueue_ms
    assert attempt_of(jobs[0], "free").kwargs or attempt_of(jobs[1], "free").kwargs


async def test_a_plain_arq_job_counts_its_tries_in_arqs_counter(runner: JobRunner) -> None:
    queue, job_id = runner.keys.queue("free"), "a" * 32
    await runner.redis.set(arq_job(job_id), b'{"f":"demo.echo","a":[],"k":{},"et":1}', px=60_000)
    await runner.redis.zadd(queue, {job_id: 1})
    for expected in (1, 2):
        [job], _ = await _pickup(runner).claim(
            queue, wanted=1, now_ms=int(time.time() * 1000), scan=10, lease_ms=30_000,
            worker_id="w",
        )  # fmt: skip
        assert isinstance(job, Claimed) and job.record is None and job.attempt == expected
        assert await runner.redis.get(arq_retry(job_id)) == str(expected).encode()
        assert 86_400 < await runner.redis.ttl(arq_retry(job_id)) <= 88_400  # arq's own TTL
        await runner.redis.delete(arq_in_progress(job_id))  # as if its lease lapsed
        await runner.redis.zadd(queue, {job_id: 1})


async def test_endings_of_one_tick_are_written_in_one_call(runner: JobRunner) -> None:
    ids = await _enqueue(runner, 6)
    queue = runner.keys.queue("free")
    jobs, _ = await _pickup(runner).claim(
        queue, wanted=10, now_ms=int(time.time() * 1000), scan=100, lease_ms=30_000, worker_id="w"
    )
    s = runner.store
    finisher = Finisher(runner.redis, s.keys, record_ttl=s.record_ttl, result_ttl=s.result_ttl)
    calls: list[int] = []

    async def write(endings, now):  # type: ignore[no-untyped-def]
        calls.append(len(endings))
        return await finisher.finish(endings, now, "w")

    batcher = FinishBatcher(write)
    endings = [
        Ending(
            queue,
            j.job_id,
            j.attempt,
            "end",
            JobStatus.SUCCEEDED,
            {"finished_at": time.time() * 1000},
            '{"at":"2026-01-01T00:00:00Z","event":"succeeded"}',
            result_json='{"ok":1}',
            arq_result=b'{"s":true}',
        )
        for j in jobs
        if isinstance(j, Claimed)
    ]
    replies = await asyncio.gather(*(batcher.end(e) for e in endings))
    assert calls == [6]
    assert all(r.moved and r.status == "succeeded" for r in replies)
    for job_id in ids:
        assert (await runner.get(job_id)).status is JobStatus.SUCCEEDED
        assert await runner.result(job_id) == {"ok": 1}
        gone = [arq_job(job_id), arq_retry(job_id), arq_in_progress(job_id)]
        assert await runner.redis.exists(*gone) == 0
        assert await runner.redis.zscore(queue, job_id) is None
        assert 0 < await runner.redis.ttl(arq_result(job_id)) <= s.result_ttl
    # a second end of the same attempt is refused: the record moved on
    [again] = await finisher.finish(endings[:1], time.time() * 1000, "w")
    assert (again.moved, again.status) == (False, "succeeded")


async def test_several_workers_on_one_queue_start_each_job_once(runner: JobRunner) -> None:
    workers = [
        WorkerRunner(
            runner.settings, runner.registry, redis=runner.redis, queues=["free"], concurrency=7
        )
        for _ in range(3)
    ]
    for w in workers:
        await w.start()
    try:
        ids = await _enqueue(runner, 150)
        for job_id in ids:
            done = await runner.wait(job_id, timeout=60)
            assert done.status is JobStatus.SUCCEEDED and done.attempts == 1, done
    finally:
        for w in workers:
            await w.stop(grace=0)
    for job_id in ids:
        events = [a.event for a in await runner.audit(job_id)]
        assert events == ["enqueued", "started", "succeeded"], (job_id, events)


async def test_sigkilled_worker_with_a_batch_claimed_loses_none(
    runner: JobRunner, spawn: list[subprocess.Popen[bytes]]
) -> None:
    ids = await _enqueue(runner, 12, "demo.sleep", seconds=30, steps=1)
    proc = start_arq_worker(runner, spawn)  # concurrency 8, lease 2 s
    running = await eventually(
        lambda: runner.store.get_many(ids),
        lambda rs: sum(r.status is JobStatus.RUNNING for r in rs) == 8,
        timeout=30,
    )
    held = {r.id for r in running if r.status is JobStatus.RUNNING}
    proc.send_signal(signal.SIGKILL)
    await asyncio.to_thread(proc.wait, 10)
    killed_at = time.time()
    for job_id in ids:  # the rest finish quickly from here
        await runner.redis.hset(runner.keys.job(job_id), "params", '{"seconds":0.05,"steps":1}')
    async with WorkerRunner(
        runner.settings, runner.registry, redis=runner.redis, queues=["free"], concurrency=20
    ):
        done = [await runner.wait(job_id, timeout=40) for job_id in ids]
    assert all(d.status is JobStatus.SUCCEEDED for d in done)
    for d in done:
        starts = [a for a in await runner.audit(d.id) if a.event == "started"]
        if d.id in held:
            assert (d.attempts, d.interruptions, len(starts)) == (2, 1, 2)
            assert starts[1].at.timestamp() >= killed_at  # not before its lease lapsed
        else:
            assert (d.attempts, len(starts)) == (1, 1)


async def test_arq_job_status_and_info_read_running_and_finished_jobs(
    runner: JobRunner, worker: WorkerRunner
) -> None:
    job = await runner.enqueue("demo.sleep", {"seconds": 30, "steps": 1})
    arq_job_ = Job(job.id, runner.redis, _queue_name=job.queue, _deserializer=deserialize)
    await wait_running(runner, job.id)
    assert await arq_job_.status() == ArqStatus.in_progress
    info = await arq_job_.info()
    assert info is not None and info.function == "demo.sleep"
    await runner.cancel(job.id)
    assert (await runner.wait(job.id, timeout=10)).status is JobStatus.CANCELLED
    assert await arq_job_.status() == ArqStatus.complete

    echo = await runner.enqueue("demo.echo", {"x": 1})
    assert (await runner.wait(echo.id, timeout=10)).status is JobStatus.SUCCEEDED
    finished = Job(echo.id, runner.redis, _queue_name=echo.queue, _deserializer=deserialize)
    assert await finished.status() == ArqStatus.complete
    assert await finished.result(timeout=1) == {"x": 1}
    result_info = await finished.result_info()
    assert result_info is not None and result_info.success and result_info.job_try == 1
    # built from the record (the payload is not read at the start): what arq's payload says
    assert (result_info.function, result_info.kwargs) == ("demo.echo", {})
    assert abs(result_info.enqueue_time.timestamp() - echo.created_at.timestamp()) < 0.002
    # one copy of the value: arq's result entry, which our result read falls back to
    assert await runner.redis.exists(runner.keys.result(echo.id)) == 0
    assert await runner.result(echo.id) == {"x": 1}

    flaky = await runner.enqueue("demo.flaky", {"fail_times": 5}, max_tries=1)
    assert (await runner.wait(flaky.id, timeout=10)).status is JobStatus.FAILED
    failed = Job(flaky.id, runner.redis, _queue_name=flaky.queue, _deserializer=deserialize)
    with pytest.raises(RemoteError):
        await failed.result(timeout=1)


def test_audit_entries_are_written_as_the_model_writes_them() -> None:
    error = JobError(type="ValueError", code="task_error", message="no", attempt=2)
    raw = audit("failed", status=JobStatus.FAILED, attempt=2, error=error, message=None)
    entry = AuditEntry.model_validate_json(raw)
    assert json.loads(raw) == json.loads(entry.model_dump_json(exclude_none=True))
    assert (entry.event, entry.status, entry.attempt, entry.error) == ("failed", "failed", 2, error)


async def test_a_plain_arq_job_is_adopted_or_failed_in_arq_terms(
    runner: JobRunner, worker: WorkerRunner
) -> None:
    queue = runner.keys.queue("free")
    plain = await runner.redis.enqueue_job("demo.echo", _queue_name=queue, sku="B2")
    assert plain is not None
    key = runner.keys.job(plain.job_id)
    assert await eventually(lambda: runner.redis.exists(key), bool, timeout=5)  # adopted
    done = await runner.wait(plain.job_id, timeout=10)
    assert (done.status, done.attempts, done.plan) == (JobStatus.SUCCEEDED, 1, "free")
    assert await plain.result(timeout=5) == {"sku": "B2"}  # arq's own reader

    unknown = await runner.redis.enqueue_job("no.such.task", _queue_name=queue, x=1)
    assert unknown is not None
    with pytest.raises(RemoteError):  # no record to fail: arq's result says why
        await unknown.result(timeout=10, poll_delay=0.05)
    assert await runner.redis.exists(arq_job(unknown.job_id), runner.keys.job(unknown.job_id)) == 0
