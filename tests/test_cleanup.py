"""Cleanup and prune: finished jobs' traces go once their records expired, blobs once past
retention, in bounded batches repeated until done; live things stay."""

from __future__ import annotations

import time

import pytest

from jobrunner.errors import BlobNotFoundError
from jobrunner.runtime import JobRunner
from jobrunner.store.blobindex import BlobIndex
from jobrunner.store.cleanup import BlobSweep
from jobrunner.store.keys import arq_result
from jobrunner.tasks.upkeep import Upkeep

DAY_MS = 86_400_000


async def _ended(runner: JobRunner, tenant: str = "t") -> str:
    """A job that ended (cancelled before it started): terminal, with a record TTL."""
    job = await runner.enqueue("demo.echo", {}, tenant=tenant, defer_seconds=600)
    await runner.cancel(job.id)
    return job.id


async def _finished_long_ago(runner: JobRunner, job_id: str, days: float) -> None:
    """Move the job's entry in the finished zset ``days`` back (as if it ended then)."""
    finished = runner.keys.finished
    for member in await runner.redis.zrange(finished, 0, -1):
        if job_id in member.decode():
            await runner.redis.zadd(finished, {member: time.time() * 1000 - days * DAY_MS})


def _upkeep(runner: JobRunner, **settings: object) -> Upkeep:
    return Upkeep(runner.store, runner.blobs, runner.settings.model_copy(update=settings))


async def test_cleanup_removes_expired_jobs_traces_and_leaves_live_ones(runner: JobRunner) -> None:
    r, k = runner.redis, runner.keys
    gone, lost_ttl, alive, fresh = [await _ended(runner) for _ in range(4)]
    for job_id in (gone, lost_ttl, alive):
        await _finished_long_ago(runner, job_id, days=8)  # record TTL: 7 days
    await r.delete(k.job(gone))  # its record expired; its result and audit lost their TTLs
    await r.set(k.result(gone), "{}")
    await r.persist(k.audit(gone))
    await r.persist(k.job(lost_ttl))  # a record that lost its TTL
    await r.persist(k.audit(lost_ttl))

    report = await _upkeep(runner).cleanup()

    assert report["jobs_pruned"] == 2
    assert report["leftover_keys"] == 4
    assert report["records_still_alive"] == 1
    assert report["index_entries"] == 2 * 7  # all, status, task (tenant and "*"), plan
    for job_id in (gone, lost_ttl):
        for key in (k.job(job_id), k.audit(job_id), k.result(job_id)):
            assert not await r.exists(key), key
    page = await runner.list("t")
    assert page.total == 2 and {j.id for j in page.items} == {alive, fresh}
    assert await r.zcard(k.status_index("*", "cancelled")) == 2
    assert await r.zcard(k.plan_index("free")) == 2
    # the record still alive is looked at again once it has expired, not at every batch
    cutoff = time.time() * 1000 - runner.settings.record_ttl_seconds * 1000
    assert await r.zcount(k.finished, "-inf", cutoff) == 0
    assert await r.zcard(k.finished) == 2


async def test_prune_repeats_small_batches_until_nothing_is_due(runner: JobRunner) -> None:
    ids = [await _ended(runner) for _ in range(7)]
    for job_id in ids:
        await _finished_long_ago(runner, job_id, days=8)
        await runner.redis.delete(runner.keys.job(job_id))
    report = await _upkeep(runner, maintenance_batch=2).prune()
    assert report["jobs_pruned"] == 7
    assert report["redis_calls"] >= 4 + 1  # 2+2+2+1 jobs, then the abort set
    assert await runner.redis.zcard(runner.keys.finished) == 0
    assert (await runner.list("t")).total == 0


async def test_blobs_go_past_retention_outputs_with_their_jobs_result(runner: JobRunner) -> None:
    blobs, r, k = runner.blobs, runner.redis, runner.keys
    result_ttl = runner.settings.result_ttl_seconds
    short = BlobIndex(r, k, ttl_seconds=72 * 3600, output_ttl_seconds=result_ttl)
    long = BlobIndex(r, k, ttl_seconds=100 * 3600)
    old_upload = await blobs.put_bytes(b"old", scheme="upload")
    new_upload = await blobs.put_bytes(b"new", scheme="upload")
    await short.record(old_upload, tenant="t", content_type="text/plain")
    await long.record(new_upload, tenant="t", content_type="text/plain")
    ended, with_result = await _ended(runner), await _ended(runner)
    await r.set(k.result(with_result), "{}", ex=3600)
    waiting = (await runner.enqueue("demo.echo", {}, tenant="t", defer_seconds=600)).id
    outputs = {}
    for job_id in (ended, with_result, waiting):
        outputs[job_id] = await blobs.put_bytes(job_id.encode(), name="out.csv")
        await short.record(outputs[job_id], tenant="t", content_type="text/csv", job_id=job_id)

    later = time.time() * 1000 + 80 * 3600 * 1000  # past 72 h, not 100 h
    report = await _upkeep(runner, maintenance_batch=2).cleanup(later)

    assert report["uploads_deleted"] == 1 and report["outputs_deleted"] == 1
    assert report["outputs_kept_with_result"] == 2
    for ref in (old_upload, outputs[ended]):
        with pytest.raises(BlobNotFoundError):
            await blobs.get_bytes(ref)
        assert await short.owner(ref) is None
    assert await blobs.get_bytes(new_upload) == b"new"
    for job_id in (with_result, waiting):
        assert await blobs.get_bytes(outputs[job_id]) == job_id.encode()
        assert await short.owner(outputs[job_id]) is not None
    assert await r.zcard(k.blob_expiry) == 3
    again = await _upkeep(runner).cleanup(later)  # nothing more is due at the same time
    assert again["uploads_deleted"] == again["outputs_deleted"] == 0


async def test_an_output_stays_while_its_jobs_result_lives_only_in_arqs_entry(
    runner: JobRunner,
) -> None:
    r, k = runner.redis, runner.keys
    result_ttl = runner.settings.result_ttl_seconds
    index = BlobIndex(r, k, ttl_seconds=3600, output_ttl_seconds=result_ttl)
    job_id = await _ended(runner)
    await r.set(arq_result(job_id), b'{"s":true,"r":1}', ex=3600)  # a success's only copy
    output = await runner.blobs.put_bytes(b"out", name="out.csv")
    await index.record(output, tenant="t", content_type="text/csv", job_id=job_id)
    past_due = time.time() * 1000 + (runner.settings.result_ttl_seconds + 3600) * 1000
    report = await _upkeep(runner).cleanup(past_due)
    assert (report["outputs_deleted"], report["outputs_kept_with_result"]) == (0, 1)
    assert await runner.blobs.get_bytes(output) == b"out"


async def test_forgetting_a_blob_takes_it_off_the_cleanup(runner: JobRunner) -> None:
    index = BlobIndex(runner.redis, runner.keys, ttl_seconds=60)
    ref = await runner.blobs.put_bytes(b"x", scheme="upload")
    await index.record(ref, tenant="t", content_type="text/plain")
    assert await runner.redis.zcard(runner.keys.blob_expiry) == 1
    await index.forget(ref)
    assert await runner.redis.zcard(runner.keys.blob_expiry) == 0


async def test_a_blob_the_store_would_not_delete_is_tried_again_later(runner: JobRunner) -> None:
    index = BlobIndex(runner.redis, runner.keys, ttl_seconds=60)
    refs = [await runner.blobs.put_bytes(b"x", scheme="upload") for _ in range(3)]
    for ref in refs:
        await index.record(ref, tenant="t", content_type="text/plain")
    stuck = refs[0]

    async def delete(ref: str) -> None:
        if ref == stuck:
            raise OSError("the store said no")
        await runner.blobs.delete(ref)

    sweep = BlobSweep(runner.redis, runner.keys, batch=2, output_wait_s=60)
    later = time.time() * 1000 + 120_000
    counts = await sweep.run(later, delete)
    assert (counts.uploads, counts.failed) == (2, 1)
    assert await runner.blobs.get_bytes(stuck) == b"x"
    assert await index.owner(stuck) is not None
    assert (await sweep.run(later, delete)).failed == 0  # claimed: not handed out at once
    retry_at = await runner.redis.zscore(runner.keys.blob_expiry, f"{stuck}\t")
    assert retry_at is not None and retry_at > later + 3_000_000  # an hour on
    assert (await sweep.run(retry_at, runner.blobs.delete)).uploads == 1
    assert await runner.redis.zcard(runner.keys.blob_expiry) == 0
