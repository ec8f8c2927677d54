"""The arq internals jobrunner relies on, each checked so an arq release that changes one fails
here, loudly, before anything subtler breaks. `.ci/arq-versions` runs this file on every arq
version the pin in pyproject.toml allows.

What we rely on (ARCHITECTURE.md, "How we bend arq"): the key prefixes of ``arq.constants``;
the payload fields of ``serialize_job``/``serialize_result`` (our Lua writes and reads them);
``Worker`` internals our subclass overrides or sets (``_poll_iteration`` driven by ``main``,
``heart_beat``, ``in_progress_timeout_s``, ``tasks``, the job counters, ``allow_pick_jobs``,
``main_task``); ``func``'s keywords; and how ``Job(id).status()``/``info()``/``result()`` read
the keys a finished or running job leaves.
"""

from __future__ import annotations

import inspect
import time
from typing import Any

import arq
import arq.constants as c
from arq.connections import ArqRedis, RedisSettings, create_pool
from arq.jobs import (
    Job,
    JobStatus,
    deserialize_job,
    deserialize_result,
    serialize_job,
    serialize_result,
)
from arq.worker import Function, Worker, func

from jobrunner.serializer import RemoteError, deserialize, serialize
from jobrunner.store import keys


def test_key_prefixes_are_the_ones_our_lua_uses() -> None:
    assert c.job_key_prefix == "arq:job:"
    assert c.in_progress_key_prefix == "arq:in-progress:"
    assert c.retry_key_prefix == "arq:retry:"
    assert c.result_key_prefix == "arq:result:"
    assert c.abort_jobs_ss == "arq:abort"
    assert keys.arq_job("x") == "arq:job:x"
    assert keys.arq_in_progress("x") == "arq:in-progress:x"
    assert keys.arq_retry("x") == "arq:retry:x"
    assert keys.arq_result("x") == "arq:result:x"


def test_job_payload_fields() -> None:
    raw = serialize_job("demo.echo", (), {"expires_ms": 5.0}, None, 1234, serializer=serialize)
    assert deserialize(raw) == {
        "t": None,
        "f": "demo.echo",
        "a": [],
        "k": {"expires_ms": 5.0},
        "et": 1234,
    }
    job = deserialize_job(raw, deserializer=deserialize)
    assert (job.function, job.kwargs, job.job_try) == ("demo.echo", {"expires_ms": 5.0}, None)


def test_result_payload_fields() -> None:
    raw = serialize_result(
        "demo.echo",
        (),
        {},
        2,
        1000,
        True,
        {"ok": 1},
        1100,
        1200,
        "ref",
        "q",
        job_id="j",
        serializer=serialize,
    )
    assert raw is not None
    assert set(deserialize(raw)) == {"t", "f", "a", "k", "et", "s", "r", "st", "ft", "q", "id"}
    result = deserialize_result(raw, deserializer=deserialize)
    assert (result.success, result.result, result.job_try, result.job_id) == (
        True,
        {"ok": 1},
        2,
        "j",
    )
    failed = serialize_result(
        "f", (), {}, 1, 0, False, ValueError("no"), 0, 0, "r", "q", job_id="j", serializer=serialize
    )
    assert failed is not None
    error = deserialize_result(failed, deserializer=deserialize).result
    assert isinstance(error, RemoteError) and error.type_name == "ValueError"


async def _noop(ctx: dict[str, Any]) -> None:
    return None


def test_worker_internals_our_subclass_uses() -> None:
    fn = func(_noop, name="n", max_tries=3, timeout=5, keep_result=0)
    assert isinstance(fn, Function) and (fn.name, fn.max_tries) == ("n", 3)
    worker = Worker(
        [fn],
        queue_name="q",
        handle_signals=False,
        poll_delay=0,
        allow_abort_jobs=True,
        keep_result=0,
        max_tries=3,
        job_serializer=serialize,
        job_deserializer=deserialize,
    )
    for name in (
        "tasks",
        "jobs_complete",
        "jobs_failed",
        "jobs_retried",
        "allow_pick_jobs",
        "in_progress_timeout_s",
        "main_task",
        "queue_name",
        "functions",
    ):
        assert hasattr(worker, name), name
    assert worker.tasks == {} and worker.allow_pick_jobs is True
    assert inspect.iscoroutinefunction(Worker._poll_iteration)
    assert inspect.iscoroutinefunction(Worker.heart_beat)
    # main() drives our override: every poll is one _poll_iteration call
    assert "self._poll_iteration()" in inspect.getsource(Worker.main)
    assert list(inspect.signature(Worker.__init__).parameters)[1] == "functions"


def test_arq_version_is_within_the_pin() -> None:
    major, minor = (int(p) for p in arq.VERSION.split(".")[:2])
    assert (major, minor) >= (0, 26) and (major, minor) < (0, 29), arq.VERSION


async def _pool(url: str) -> ArqRedis:
    return await create_pool(
        RedisSettings.from_dsn(url), job_serializer=serialize, job_deserializer=deserialize
    )


async def test_enqueue_job_writes_the_keys_we_claim(redis_url: str, key_prefix: str) -> None:
    redis = await _pool(redis_url)
    queue = f"{key_prefix}:queue:contract"
    job_id = f"{key_prefix}-plain"
    try:
        job = await redis.enqueue_job("demo.echo", _job_id=job_id, _queue_name=queue, a=1)
        assert job is not None
        assert await redis.zscore(queue, job_id) is not None
        payload = deserialize(await redis.get(c.job_key_prefix + job_id))
        assert payload["f"] == "demo.echo" and payload["k"] == {"a": 1}
        assert await Job(job_id, redis, _queue_name=queue).status() == JobStatus.queued
    finally:
        await redis.delete(c.job_key_prefix + job_id)
        await redis.aclose()


async def test_job_status_and_info_read_the_keys_a_worker_leaves(
    redis_url: str, key_prefix: str
) -> None:
    """Running: the lease exists and the queue entry sits at the lease's expiry (in the
    future); finished: only the result key. arq must read both as we expect."""
    redis = await _pool(redis_url)
    queue, job_id = f"{key_prefix}:queue:contract", f"{key_prefix}-job"
    job = Job(job_id, redis, _queue_name=queue, _deserializer=deserialize)
    now = int(time.time() * 1000)
    try:
        await redis.set(
            c.job_key_prefix + job_id,
            serialize_job("t", (), {"a": 1}, None, now, serializer=serialize),
        )
        await redis.zadd(queue, {job_id: now + 60_000})
        await redis.set(c.in_progress_key_prefix + job_id, "worker-1", px=60_000)
        assert await job.status() == JobStatus.in_progress
        info = await job.info()
        assert info is not None and (info.function, info.kwargs) == ("t", {"a": 1})
        await redis.delete(c.in_progress_key_prefix + job_id, c.job_key_prefix + job_id)
        await redis.zrem(queue, job_id)
        result = serialize_result(
            "t",
            (),
            {"a": 1},
            1,
            now,
            True,
            7,
            now,
            now,
            "r",
            queue,
            job_id=job_id,
            serializer=serialize,
        )
        assert result is not None
        await redis.set(c.result_key_prefix + job_id, result, px=60_000)
        assert await job.status() == JobStatus.complete
        assert await job.result(timeout=1) == 7
        finished = await job.info()
        assert finished is not None and finished.success is True  # type: ignore[attr-defined]
    finally:
        await redis.delete(
            c.result_key_prefix + job_id,
            c.job_key_prefix + job_id,
            c.in_progress_key_prefix + job_id,
        )
        await redis.zrem(queue, job_id)
        await redis.aclose()
