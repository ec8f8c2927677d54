"""Single-job submit: one Lua call writes the record, its indices, the idempotency key and arq's
own entry, all or nothing; arq reads what it wrote as its own; concurrent submits coalesce."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import time
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from arq.jobs import Job as ArqJob
from arq.jobs import JobStatus as ArqStatus
from redis.asyncio import Redis

from jobrunner.admission import PRIORITY_STEP_MS, Admitted
from jobrunner.domain.models import JobRecord
from jobrunner.domain.status import JobStatus
from jobrunner.errors import IdempotencyConflictError, RedisUnavailableError
from jobrunner.runtime import JobRunner, Submitted
from jobrunner.serializer import deserialize
from jobrunner.store.coalesce import Coalescer
from jobrunner.store.creation import Created
from jobrunner.store.keys import ALL_TENANTS, Keys, arq_job
from jobrunner.submission import parse_request
from jobrunner.tasks.catalog import build_registry
from jobrunner.worker.runner import WorkerRunner
from tests.conftest import make_settings
from tests.polling import eventually


def _ms(record_time: datetime | None) -> int:
    assert record_time is not None
    return round(record_time.timestamp() * 1000)


async def _all_keys(redis: Redis) -> set[str]:
    return {k.decode() async for k in redis.scan_iter(count=1000)}


async def test_one_submit_writes_everything_and_hands_back_what_it_wrote(
    runner: JobRunner,
) -> None:
    job = await runner.enqueue(
        "demo.echo", {"a": 1}, tenant="acme", priority=3, idempotency_key="k1", ttl_seconds=60
    )
    assert (await runner.get(job.id)).model_dump() == job.model_dump()
    k, redis = runner.keys, runner.redis
    created = _ms(job.created_at)
    score = await redis.zscore(job.queue, job.id)
    # ready now: moved ahead of older jobs by its priority
    assert score == pytest.approx(created - 3 * PRIORITY_STEP_MS, abs=1)
    for index in [
        k.tenant_index("acme"),
        k.status_index("acme", "queued"),
        k.task_index("acme", "demo.echo"),
        k.tenant_index(ALL_TENANTS),
        k.status_index(ALL_TENANTS, "queued"),
        k.task_index(ALL_TENANTS, "demo.echo"),
        k.plan_index(job.plan),
    ]:
        assert await redis.zscore(index, job.id) is not None, index
    assert await redis.zscore(k.expiring, job.id) is not None
    assert json.loads(await redis.get(k.idempotency("acme", "k1")))["job_id"] == job.id
    assert [a.event for a in await runner.audit(job.id)] == ["enqueued"]
    ttl_ms = await redis.pttl(arq_job(job.id))
    expected = 60_000 + runner.settings.job_key_ttl_seconds * 1000
    assert expected - 5_000 < ttl_ms <= expected


async def test_arq_reads_a_submitted_job_as_its_own(runner: JobRunner) -> None:
    job = await runner.enqueue("demo.echo", {"x": 1}, ttl_seconds=60)
    ours = ArqJob(job.id, runner.redis, _queue_name=job.queue, _deserializer=deserialize)
    info = await ours.info()
    assert info is not None
    assert info.function == "demo.echo"
    assert list(info.args) == []  # JSON has no tuples; arq's own jobs read back the same
    assert info.kwargs == {"expires_ms": pytest.approx(_ms(job.expires_at), abs=1)}
    assert info.job_try is None  # as arq's enqueue_job leaves it; arq counts tries on pickup
    assert _ms(info.enqueue_time) == pytest.approx(_ms(job.created_at), abs=1)
    assert info.score == await runner.redis.zscore(job.queue, job.id)
    assert await ours.status() is ArqStatus.queued

    later = await runner.enqueue("demo.echo", {}, defer_seconds=300)
    deferred = ArqJob(later.id, runner.redis, _queue_name=later.queue)
    assert await deferred.status() is ArqStatus.deferred

    # arq's own enqueue_job, asked for the same TTL, writes a payload of the same shape
    twin = await runner.redis.enqueue_job(
        "demo.echo",
        _queue_name=runner.keys.queue("twin"),
        _expires=timedelta(seconds=runner.settings.job_key_ttl_seconds),
        expires_ms=1,
    )
    assert twin is not None
    theirs = json.loads(await runner.redis.get(arq_job(twin.job_id)))
    mine = json.loads(await runner.redis.get(arq_job(job.id)))
    assert {k: type(v) for k, v in mine.items()} == {k: type(v) for k, v in theirs.items()}
    plain = await runner.enqueue("demo.echo", {})
    assert await runner.redis.pttl(arq_job(plain.id)) == pytest.approx(
        await runner.redis.pttl(arq_job(twin.job_id)), abs=5_000
    )
    await runner.redis.delete(arq_job(twin.job_id))


async def test_a_job_enqueued_by_plain_arq_runs_on_our_workers(
    runner: JobRunner, worker: WorkerRunner
) -> None:
    job = await runner.redis.enqueue_job(
        "demo.echo", _queue_name=runner.keys.queue("free"), sku="A1"
    )
    assert job is not None
    key = runner.keys.job(job.job_id)
    assert await eventually(lambda: runner.redis.exists(key), bool, timeout=5)
    done = await runner.wait(job.job_id, timeout=10)
    assert done.status is JobStatus.SUCCEEDED
    assert await runner.result(job.job_id) == {"sku": "A1"}


def _plant(keys: Keys, where: str, queue: str) -> str:
    """A key of the wrong type where create_job.lua writes, so that command fails."""
    return {
        "task_index": keys.task_index("acme", "demo.echo"),
        "counter": keys.submitted_counts,
        "arq_queue": queue,
    }[where]


@pytest.mark.parametrize("where", ["task_index", "counter", "arq_queue"])
async def test_a_command_failing_half_way_leaves_nothing_written(
    stoppable_redis: tuple[str, subprocess.Popen[bytes]], tmp_path: Path, where: str
) -> None:
    url, _ = stoppable_redis
    settings = make_settings(url, "atomic", tmp_path)
    async with JobRunner(settings, build_registry(settings), warn_unserved=False) as runner:
        planted = _plant(runner.keys, where, runner.keys.queue("free"))
        await runner.redis.set(planted, "not a zset or hash")
        before = await _all_keys(runner.redis)
        options = {"tenant": "acme", "idempotency_key": "once", "ttl_seconds": 60}
        with pytest.raises(RedisUnavailableError, match="WRONGTYPE") as info:
            await runner.enqueue("demo.echo", {"a": 1}, **options)
        assert info.value.code == "redis_unavailable"
        assert "create_job undone" in info.value.message
        assert await _all_keys(runner.redis) == before  # not one key more
        assert await runner.redis.type(planted) == b"string"
        # the idempotency key was taken back too: the same submit now creates the job
        await runner.redis.delete(planted)
        job = await runner.enqueue("demo.echo", {"a": 1}, **options)
        assert (await runner.get(job.id)).status is JobStatus.QUEUED
        assert await runner.redis.zscore(job.queue, job.id) is not None
        assert await runner.redis.hgetall(runner.keys.submitted_counts) == {
            f"{job.plan}\tdemo.echo".encode(): b"1"
        }


async def test_a_failing_job_in_a_batch_fails_alone(
    stoppable_redis: tuple[str, subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    """Submits of one loop tick share one Lua call; when one of them cannot be written, the
    call undoes itself and each job is sent alone: the others are created, the one fails."""
    url, _ = stoppable_redis
    settings = make_settings(url, "batch", tmp_path)
    async with JobRunner(settings, build_registry(settings), warn_unserved=False) as runner:
        planted = runner.keys.task_index("broken", "demo.echo")
        await runner.redis.set(planted, "not a zset")
        tenants = ["acme", "broken", "globex", "acme"]
        outcomes = await asyncio.gather(
            *(runner.enqueue("demo.echo", {"i": i}, tenant=t) for i, t in enumerate(tenants)),
            return_exceptions=True,
        )
        failed = [o for o in outcomes if isinstance(o, Exception)]
        assert len(failed) == 1 and isinstance(outcomes[1], RedisUnavailableError)
        assert "WRONGTYPE" in str(outcomes[1])
        made = [o for o in outcomes if isinstance(o, JobRecord)]
        assert [j.tenant for j in made] == ["acme", "globex", "acme"]
        for job in made:
            assert (await runner.get(job.id)).status is JobStatus.QUEUED
            assert await runner.redis.zscore(job.queue, job.id) is not None
        listed = await runner.redis.zrange(runner.keys.tenant_index(ALL_TENANTS), 0, -1)
        assert sorted(i.decode() for i in listed) == sorted(j.id for j in made)
        assert await runner.redis.zcard(runner.keys.tenant_index("broken")) == 0
        counts = await runner.redis.hgetall(runner.keys.submitted_counts)
        assert sum(int(v) for v in counts.values()) == 3


async def test_submits_cut_off_by_a_silent_redis_are_whole_or_absent(
    stoppable_redis: tuple[str, subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    url, proc = stoppable_redis
    settings = make_settings(url, "cut", tmp_path, redis_timeout_seconds=0.3)
    async with JobRunner(settings, build_registry(settings), warn_unserved=False) as runner:
        await runner.enqueue("demo.echo", {"warm": True})
        proc.send_signal(signal.SIGSTOP)
        try:
            outcomes = await asyncio.gather(
                *(runner.enqueue("demo.echo", {"i": i}) for i in range(20)),
                return_exceptions=True,
            )
        finally:
            proc.send_signal(signal.SIGCONT)
        assert all(isinstance(o, RedisUnavailableError) for o in outcomes), outcomes
        assert all("no answer within" in str(o) for o in outcomes)
    # what the frozen Redis had received runs now (once, even if it was sent again after a
    # timeout) or never ran: every job whole, none in part. Read in one MULTI, as a snapshot.
    keys = Keys("cut")
    queue = keys.queue("free")
    redis = Redis.from_url(url)
    try:
        async with redis.pipeline(transaction=True) as snap:
            snap.zrange(keys.tenant_index("default"), 0, -1)
            snap.zcard(queue)
            snap.hgetall(keys.submitted_counts)
            listed, queued, counts = await snap.execute()
        ids = [i.decode() for i in listed]
        assert queued == len(ids)
        assert sum(int(v) for v in counts.values()) == len(ids)
        for job_id in ids:
            assert await redis.exists(keys.job(job_id), arq_job(job_id)) == 2
            assert await redis.zscore(queue, job_id) is not None
            assert await redis.llen(keys.audit(job_id)) == 1  # a resent call wrote nothing
    finally:
        await redis.aclose()


async def test_a_forgotten_script_is_loaded_again(
    stoppable_redis: tuple[str, subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    url, _ = stoppable_redis
    settings = make_settings(url, "flush", tmp_path)
    async with JobRunner(settings, build_registry(settings), warn_unserved=False) as runner:
        await runner.enqueue("demo.echo", {})
        await runner.redis.script_flush()
        jobs = await asyncio.gather(*(runner.enqueue("demo.echo", {"i": i}) for i in range(5)))
        assert await runner.redis.zcard(runner.keys.queue("free")) == 6
        assert len({j.id for j in jobs}) == 5


async def test_one_key_from_two_clients_at_once_makes_one_job(
    runner: JobRunner, settings: object
) -> None:
    async with JobRunner(runner.settings, runner.registry, warn_unserved=False) as other:
        results = await asyncio.gather(
            *(
                client.enqueue("demo.echo", {"n": 1}, idempotency_key="race")
                for _ in range(25)
                for client in (runner, other)
            )
        )
    assert len({r.id for r in results}) == 1
    assert (await runner.list()).total == 1
    assert await runner.redis.zcard(runner.keys.queue("free")) == 1


async def test_each_caller_in_one_coalesced_batch_gets_its_own_outcome(
    runner: JobRunner,
) -> None:
    first = await runner.enqueue("demo.echo", {"a": 1}, idempotency_key="taken")
    await runner.redis.set(runner.keys.tenant_index("broken"), "wrong type")
    batches: list[int] = []

    async def counted(batch: Sequence[Admitted]) -> Sequence[Created | Exception]:
        batches.append(len(batch))
        return await runner._create_batch(batch)

    runner._creates = Coalescer(counted)
    replayed = parse_request({"task": "demo.echo", "params": {"a": 1}, "idempotency_key": "taken"})
    good, conflict, broken, replay = await asyncio.gather(
        runner.enqueue("demo.echo", {"ok": True}),
        runner.enqueue("demo.echo", {"a": 2}, idempotency_key="taken"),
        runner.enqueue("demo.echo", {}, tenant="broken"),
        runner.submit_or_replay(replayed),
        return_exceptions=True,
    )
    assert batches == [4]  # one pipeline
    assert isinstance(good, JobRecord)
    assert (await runner.get(good.id)).status is JobStatus.QUEUED
    assert isinstance(conflict, IdempotencyConflictError)
    assert conflict.details["job_id"] == first.id
    assert isinstance(broken, RedisUnavailableError)
    assert "WRONGTYPE" in broken.message
    assert not await runner.redis.sismember(runner.keys.tenants, "broken")
    assert isinstance(replay, Submitted)
    assert replay.replayed
    assert replay.record.id == first.id
    assert await runner.redis.zcard(runner.keys.queue("free")) == 2  # first and good only


@pytest.mark.parametrize("key", [None, "resent"])
async def test_a_create_sent_again_after_the_job_moved_on_changes_nothing(
    runner: JobRunner, key: str | None
) -> None:
    """redis-py resends a command whose reply was lost (a Redis restart, say); by the time the
    copy arrives a worker may have run the job: the copy must not put the record back."""
    admitted = runner._admission.admit(
        parse_request({"task": "demo.echo", "params": {}, "idempotency_key": key}),
        time.time() * 1000,
    )
    call = [(admitted.new, admitted.arq_entry())]
    assert await runner.store.creator.create_many(call, []) == [(admitted.new.job_id, True)]
    job_id = admitted.new.job_id
    await runner.redis.hset(runner.keys.job(job_id), mapping={"status": "succeeded"})
    await runner.redis.delete(arq_job(job_id))
    await runner.redis.zrem(admitted.queue, job_id)
    assert await runner.store.creator.create_many(call, []) == [(job_id, True)]
    assert (await runner.get(job_id)).status is JobStatus.SUCCEEDED
    assert not await runner.redis.exists(arq_job(job_id))
    assert await runner.redis.zscore(admitted.queue, job_id) is None
    assert len(await runner.audit(job_id)) == 1


async def test_a_deferred_job_never_becomes_eligible_before_its_scheduled_time(
    runner: JobRunner,
) -> None:
    request = parse_request({"task": "demo.echo", "params": {}, "defer_seconds": 0.8})
    for now in (1_700_000_000_000.1, 1_700_000_000_000.5, 1_700_000_000_000.9):
        admitted = runner._admission.admit(request, now)
        scheduled = admitted.new.fields["scheduled_at"]
        assert scheduled <= admitted.score_ms < scheduled + 1
