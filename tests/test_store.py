"""Listing from indices, large results in the blob store, corrupt records, Redis outages."""

from __future__ import annotations

import asyncio
import time

import pytest
from structlog.testing import capture_logs

from jobrunner.domain.status import JobStatus
from jobrunner.errors import RecordCorruptError, RedisUnavailableError
from jobrunner.runtime import JobRunner
from jobrunner.settings import Settings
from jobrunner.worker.runner import WorkerRunner
from tests.conftest import make_settings


async def test_listing_filters_and_pages_newest_first(
    runner: JobRunner, worker: WorkerRunner
) -> None:
    ok = [await runner.enqueue("demo.echo", {"i": i}, tenant="shop") for i in range(5)]
    bad = await runner.enqueue("demo.flaky", {"fail_times": -1}, tenant="shop")
    await runner.enqueue("demo.echo", {}, tenant="other")
    for job in [*ok, bad]:
        await runner.wait(job.id, timeout=5)
    page = await runner.list("shop", limit=3)
    assert page.total == 6
    assert [r.id for r in page.items] == [bad.id, ok[4].id, ok[3].id]
    rest = await runner.list("shop", offset=3, limit=10)
    assert [r.id for r in rest.items] == [ok[2].id, ok[1].id, ok[0].id]
    failed = await runner.list("shop", status="failed")
    assert [r.id for r in failed.items] == [bad.id]
    echo_ok = await runner.list("shop", status=JobStatus.SUCCEEDED, task="demo.echo", limit=2)
    assert echo_ok.total == 5
    assert [r.id for r in echo_ok.items] == [ok[4].id, ok[3].id]
    assert (await runner.list("shop", task="demo.flaky")).total == 1
    assert (await runner.list("nobody")).total == 0


async def test_large_results_go_to_the_blob_store(
    redis_url: str, key_prefix: str, tmp_path: object
) -> None:
    settings = make_settings(redis_url, key_prefix, tmp_path, inline_result_max_bytes=100)  # type: ignore[arg-type]
    from jobrunner.tasks.catalog import build_registry

    registry = build_registry(settings)
    async with (
        JobRunner(settings, registry) as jr,
        WorkerRunner(settings, registry, redis=jr.redis),
    ):
        job = await jr.enqueue("demo.echo", {"text": "y" * 500})
        done = await jr.wait(job.id, timeout=5)
        assert done.result_ref
        assert done.result_ref.startswith("blob://")
        assert await jr.result(job.id) == {"text": "y" * 500}


async def test_a_corrupt_record_is_reported_and_the_worker_keeps_going(
    runner: JobRunner, worker: WorkerRunner
) -> None:
    victim = await runner.enqueue("demo.echo", {}, defer_seconds=0.3)
    await runner.redis.hset(runner.keys.job(victim.id), "created_at", "not-a-number")
    with pytest.raises(RecordCorruptError):
        await runner.get(victim.id)
    with capture_logs() as logs:
        await asyncio.sleep(0.6)
    reported = [e for e in logs if e.get("job_id") == victim.id]
    assert reported and reported[0]["code"] == "record_corrupt"
    assert await runner.redis.zscore(runner.keys.queue("free"), victim.id) is None
    healthy = await runner.enqueue("demo.echo", {"still": "working"})
    done = await runner.wait(healthy.id, timeout=5)
    assert done.status is JobStatus.SUCCEEDED


async def test_unreachable_redis_is_a_clear_error_not_a_hang(tmp_path: object) -> None:
    from jobrunner.embedded import free_port
    from jobrunner.tasks.catalog import build_registry

    settings = Settings(
        _env_file=None,
        redis_url=f"redis://127.0.0.1:{free_port()}/0",  # type: ignore[call-arg]
        redis_timeout_seconds=0.5,
        data_dir=tmp_path,
    )
    started = time.monotonic()
    with pytest.raises(RedisUnavailableError, match="cannot reach Redis"):
        async with JobRunner(settings, build_registry(settings)):
            pass
    assert time.monotonic() - started < 5


async def test_malformed_redis_url_is_a_config_error(tmp_path: object) -> None:
    from jobrunner.errors import ConfigError
    from jobrunner.tasks.catalog import build_registry

    settings = Settings(_env_file=None, redis_url="foo://nowhere", data_dir=tmp_path)  # type: ignore[call-arg]
    with pytest.raises(ConfigError, match="invalid Redis URL"):
        async with JobRunner(settings, build_registry(settings)):
            pass
