"""Idempotency keys: scoped to the tenant, compared by payload, atomic under concurrency."""

from __future__ import annotations

import asyncio

import pytest

from jobrunner.errors import IdempotencyConflictError
from jobrunner.runtime import JobRunner
from jobrunner.submission import parse_request


async def test_same_key_same_payload_returns_the_same_job(runner: JobRunner) -> None:
    first = await runner.enqueue("demo.echo", {"a": 1}, idempotency_key="order-1")
    again = await runner.enqueue("demo.echo", {"a": 1}, idempotency_key="order-1")
    assert again.id == first.id
    assert (await runner.list()).total == 1


async def test_same_key_other_payload_is_a_conflict(runner: JobRunner) -> None:
    first = await runner.enqueue("demo.echo", {"a": 1}, idempotency_key="order-2")
    with pytest.raises(IdempotencyConflictError) as info:
        await runner.enqueue("demo.echo", {"a": 2}, idempotency_key="order-2")
    assert info.value.details["job_id"] == first.id
    assert info.value.http_status == 409


async def test_keys_are_scoped_to_the_tenant(runner: JobRunner) -> None:
    a = await runner.enqueue("demo.echo", {"a": 1}, idempotency_key="k", tenant="t1")
    b = await runner.enqueue("demo.echo", {"a": 1}, idempotency_key="k", tenant="t2")
    assert a.id != b.id


async def test_fifty_concurrent_enqueues_with_one_key_create_one_job(runner: JobRunner) -> None:
    results = await asyncio.gather(
        *(runner.enqueue("demo.echo", {"n": 1}, idempotency_key="burst") for _ in range(50))
    )
    assert len({r.id for r in results}) == 1
    assert (await runner.list()).total == 1
    queued = await runner.redis.zcard(runner.keys.queue("free"))
    assert queued == 1


async def test_bulk_enqueue_honours_idempotency(runner: JobRunner) -> None:
    first = await runner.enqueue("demo.echo", {"a": 1}, idempotency_key="bulk-1")
    jobs = await runner.enqueue_many(
        [
            {"task": "demo.echo", "params": {"a": 1}, "idempotency_key": "bulk-1"},
            {"task": "demo.echo", "params": {"a": 3}, "idempotency_key": "bulk-2"},
        ]
    )
    assert jobs[0].id == first.id
    assert jobs[1].id != first.id
    assert await runner.redis.zcard(runner.keys.queue("free")) == 2


async def test_submit_or_replay_tells_a_replay_from_a_new_job(runner: JobRunner) -> None:
    request = parse_request(
        {"task": "demo.echo", "params": {"a": 1}, "idempotency_key": "replay-flag"}
    )
    first = await runner.submit_or_replay(request)
    second = await runner.submit_or_replay(request)
    assert (first.replayed, second.replayed) == (False, True)
    assert first.record.id == second.record.id
