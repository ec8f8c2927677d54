"""Every bound has a code: ttl, defer, timeout and max_tries past their limits, params that are
not JSON (NaN, infinities, nesting past 64 levels), records that do not decode, and a Redis
that stops answering. The CLI's side of each is in test_cli.py."""

from __future__ import annotations

import math
import signal
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from jobrunner.errors import (
    InvalidInputError,
    InvalidOverrideError,
    InvalidParamsError,
    RecordCorruptError,
    RedisUnavailableError,
)
from jobrunner.runtime import JobRunner
from jobrunner.settings import Settings
from jobrunner.submission import MAX_PARAMS_DEPTH
from jobrunner.tasks.catalog import build_registry
from tests.conftest import make_settings


def nested(levels: int) -> dict[str, Any]:
    """A params object ``levels`` deep (the object itself is level 1), built without recursion."""
    top: dict[str, Any] = {}
    inner = top
    for _ in range(levels - 1):
        inner["a"] = {}
        inner = inner["a"]
    return top


def depth_of(value: Any) -> int:
    level = 0
    while isinstance(value, dict):
        value, level = value.get("a"), level + 1
    return level


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"ttl_seconds": 1e12}, "ttl_seconds"),  # stored, then stuck running, before bounds
        ({"ttl_seconds": 1e300}, "ttl_seconds"),  # made list/status crash, before bounds
        ({"defer_seconds": 1e300}, "defer_seconds"),
        ({"defer_seconds": 366 * 86400 + 1}, "defer_seconds"),
        ({"run_at": datetime(9999, 12, 31, tzinfo=UTC)}, "run_at"),
        ({"timeout_seconds": 1e300}, "timeout_seconds"),
        ({"max_tries": 10**30}, "max_tries"),
    ],
)
async def test_options_past_their_limits_are_refused_and_nothing_is_stored(
    runner: JobRunner, options: dict[str, Any], field: str
) -> None:
    with pytest.raises(InvalidOverrideError) as caught:
        await runner.enqueue("demo.echo", {}, **options)
    assert caught.value.code == "invalid_override"
    assert caught.value.details["field"] == field and caught.value.details["limit"] > 0
    assert field in caught.value.message
    assert (await runner.list()).total == 0


@pytest.mark.parametrize(
    "options",
    [
        {"ttl_seconds": math.inf},
        {"ttl_seconds": math.nan},
        {"defer_seconds": math.inf},
        {"defer_seconds": math.nan},
        {"timeout_seconds": math.inf},
        {"timeout_seconds": math.nan},
    ],
)
async def test_options_that_are_not_finite_are_invalid_input(
    runner: JobRunner, options: dict[str, Any]
) -> None:
    with pytest.raises(InvalidInputError) as caught:
        await runner.enqueue("demo.echo", {}, **options)
    assert caught.value.code == "invalid_input"
    assert next(iter(options)) in caught.value.message
    assert (await runner.list()).total == 0


async def test_the_limits_are_settings_and_a_job_at_them_is_fine(
    redis_url: str, key_prefix: str, tmp_path: Path
) -> None:
    settings = make_settings(
        redis_url, key_prefix, tmp_path, max_ttl_seconds=60, max_defer_seconds=120
    )
    async with JobRunner(settings, build_registry(settings)) as runner:
        with pytest.raises(InvalidOverrideError, match="JOBRUNNER_MAX_TTL_SECONDS"):
            await runner.enqueue("demo.echo", {}, ttl_seconds=61)
        with pytest.raises(InvalidOverrideError, match="JOBRUNNER_MAX_DEFER_SECONDS"):
            await runner.enqueue("demo.echo", {}, defer_seconds=121)
        job = await runner.enqueue("demo.echo", {}, ttl_seconds=60, defer_seconds=119)
        page = await runner.list()
        assert [r.id for r in page.items] == [job.id] and page.skipped == []
        assert (await runner.get(job.id)).expires_at == job.expires_at


@pytest.mark.parametrize(
    "values",
    [
        {"max_ttl_seconds": 1e12},
        {"max_defer_seconds": math.inf},
        {"max_timeout_seconds": 1e300},
        {"default_timeout_seconds": math.nan},
    ],
)
def test_the_limits_themselves_are_bounded(values: dict[str, float]) -> None:
    with pytest.raises(ValidationError):
        Settings(_env_file=None, **values)  # type: ignore[arg-type]


class Reading(BaseModel):
    value: float
    history: list[float]


@pytest.mark.parametrize(
    ("params", "locs"),
    [
        ({"x": math.nan}, ["x"]),  # was stored as null, silently
        ({"x": [1.0, math.inf], "y": {"z": -math.inf}}, ["x.1", "y.z"]),
        ({"{a}": math.nan}, ["{a}"]),  # a key that looks like a template stays a key
        (Reading(value=math.nan, history=[1.0, math.inf]), ["history.1", "value"]),
    ],
)
async def test_params_that_are_not_json_are_invalid_params(
    runner: JobRunner, params: Any, locs: list[str]
) -> None:
    with pytest.raises(InvalidParamsError) as caught:
        await runner.enqueue("demo.echo", params)
    assert caught.value.code == "invalid_params"
    assert [e["loc"] for e in caught.value.details["errors"]] == locs
    assert "not a JSON number" in caught.value.message
    assert (await runner.list()).total == 0


async def test_a_model_of_finite_values_is_dumped_as_json(runner: JobRunner) -> None:
    job = await runner.enqueue("demo.echo", Reading(value=1.5, history=[2.0]))
    assert job.params == {"value": 1.5, "history": [2.0]}


async def test_params_nest_at_most_64_levels(runner: JobRunner) -> None:
    deepest = await runner.enqueue("demo.echo", nested(MAX_PARAMS_DEPTH))
    assert depth_of((await runner.get(deepest.id)).params) == MAX_PARAMS_DEPTH
    for levels in (MAX_PARAMS_DEPTH + 1, 1_000, 100_000):  # 1,000 raised RecursionError before
        started = time.monotonic()
        with pytest.raises(InvalidParamsError, match="nested deeper than 64 levels"):
            await runner.enqueue("demo.echo", nested(levels))
        assert time.monotonic() - started < 2
    with pytest.raises(InvalidParamsError):
        await runner.enqueue_many(
            [{"task": "demo.echo", "params": {}}, {"task": "demo.echo", "params": nested(65)}]
        )
    assert (await runner.list()).total == 1


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("expires_at", "1e303"),  # what --ttl 1e300 stored: OverflowError in list and status
        ("expires_at", "1e15"),  # what --ttl 1e12 stored: a year past 9999
        ("created_at", "not-a-number"),
        ("attempts", "inf"),
    ],
)
async def test_list_skips_and_reports_records_that_do_not_decode(
    runner: JobRunner, field: str, value: str
) -> None:
    jobs = [await runner.enqueue("demo.echo", {"i": i}, defer_seconds=300) for i in range(3)]
    bad = jobs[1]
    await runner.redis.hset(runner.keys.job(bad.id), field, value)  # type: ignore[misc]
    for page in (
        await runner.list(),
        await runner.list(status="queued"),
        await runner.list(status="queued", task="demo.echo"),
    ):
        assert page.total == 3
        assert [r.id for r in page.items] == [jobs[2].id, jobs[0].id]
        assert [(s.id, s.code) for s in page.skipped] == [(bad.id, "record_corrupt")]
        assert bad.id in page.skipped[0].message
    with pytest.raises(RecordCorruptError):
        await runner.get(bad.id)
    assert (await runner.list(offset=2, limit=1)).skipped == []  # only this page's


async def test_a_redis_that_stops_answering_says_why(
    stoppable_redis: tuple[str, subprocess.Popen[bytes]], key_prefix: str, tmp_path: Path
) -> None:
    url, proc = stoppable_redis
    settings = make_settings(url, key_prefix, tmp_path, redis_timeout_seconds=0.3)
    proc.send_signal(signal.SIGSTOP)  # connections are accepted, nothing is answered
    with pytest.raises(RedisUnavailableError) as caught:
        async with JobRunner(settings, build_registry(settings)):
            pass
    assert caught.value.message == f"cannot reach Redis at {url}: no answer within 0.6s"
    proc.send_signal(signal.SIGCONT)
    async with JobRunner(settings, build_registry(settings)) as runner:
        proc.send_signal(signal.SIGSTOP)
        try:
            with pytest.raises(RedisUnavailableError) as caught:
                await runner.get("0" * 32)
        finally:
            proc.send_signal(signal.SIGCONT)
    assert caught.value.message.startswith("get failed: Redis unavailable (")
    reason = caught.value.message.removeprefix("get failed: Redis unavailable (")
    assert reason.rstrip(")").strip(), caught.value.message
