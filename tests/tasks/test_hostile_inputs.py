"""Hostile inputs through a real worker: each job fails with its own code, at once, and the
worker goes on serving. Caps are small (256 MB a job, inputs inflating to 8 MB) so every
test stays bounded in time and memory."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from jobrunner.domain.status import JobStatus
from tests.tasks.pipeline_worker import MB, Rig, gzip_bomb, pipeline_worker, serve_once

GOOD_CSV = b"sku,title,price\nA,Shirt,10\n"


@pytest.fixture
async def rig(redis_url: str, key_prefix: str, tmp_path: Path) -> Rig:
    async with pipeline_worker(
        redis_url,
        key_prefix,
        tmp_path,
        input_max_decompressed_bytes=8 * MB,
        csv_max_columns=50,
        csv_max_line_bytes=64 * 1024,
    ) as rig:
        yield rig


async def assert_fails(rig: Rig, task: str, params: dict[str, object], code: str) -> None:
    done = await rig.run(task, params)
    assert done.status is JobStatus.FAILED, (task, done.error)
    assert done.error is not None and done.error.code == code, (task, done.error)
    assert done.attempts == 1 and not done.error.retryable


async def assert_serves(rig: Rig) -> None:
    uri = await rig.upload(GOOD_CSV, "good.csv")
    done = await rig.run("validate_csv", {"input_uri": uri})
    assert done.status is JobStatus.SUCCEEDED, done.error


async def test_a_gzip_bomb_fails_every_pipeline_with_input_too_large(rig: Rig) -> None:
    bomb = gzip_bomb(256 * MB)  # 256 MB of NULs in ~250 KB, against an 8 MB cap
    assert len(bomb) < MB
    csv_bomb = await rig.upload(bomb, "catalog.csv.gz")
    pdf_bomb = await rig.upload(bomb, "paper.pdf.gz")
    report = {"metrics": [{"column": "*", "agg": "count"}], "input_format": "csv"}
    for task, params in [
        ("validate_csv", {"input_uri": csv_bomb}),
        ("validate_csv", {"input_uri": csv_bomb, "auto_fix": True}),
        ("correct_csv", {"input_uri": csv_bomb}),
        ("generate_report", {"input_uri": csv_bomb, **report}),
        ("process_pdf", {"input_uri": pdf_bomb}),
    ]:
        await assert_fails(rig, task, params, "input_too_large")
    server, port = await serve_once(bomb)
    async with server:
        url = f"http://127.0.0.1:{port}/feed.csv.gz"
        await assert_fails(rig, "sync_connector", {"url": url}, "input_too_large")
    await assert_serves(rig)


async def test_wide_header_and_long_line_have_their_own_codes(rig: Rig) -> None:
    wide = ",".join(f"c{i}" for i in range(60)).encode() + b"\n" + b"1," * 59 + b"1\n"
    long_line = b"sku,title,price\n" + b"A,Shirt,10\n" * 10 + b"B," + b"x" * 200_000 + b",1\n"
    report = {"metrics": [{"column": "*", "agg": "count"}]}
    cases = [("wide.csv", wide, "too_many_columns"), ("long.csv", long_line, "line_too_long")]
    for name, data, code in cases:
        uri = await rig.upload(data, name)
        await assert_fails(rig, "validate_csv", {"input_uri": uri}, code)
        await assert_fails(rig, "generate_report", {"input_uri": uri, **report}, code)
    await assert_serves(rig)


async def test_a_job_over_its_memory_cap_fails_alone(
    redis_url: str, key_prefix: str, tmp_path: Path
) -> None:
    # one 48 MB line is allowed here; polars needs ~30x that to parse it, past the 256 MB cap
    line = b"sku,title,price\nA," + b"x" * (48 * MB) + b",1\n"
    async with pipeline_worker(redis_url, key_prefix, tmp_path, csv_max_line_bytes=64 * MB) as rig:
        uri = await rig.upload(line, "huge.csv")
        report = {"metrics": [{"column": "title", "agg": "n_unique"}]}
        await assert_fails(rig, "generate_report", {"input_uri": uri, **report}, "input_too_large")
        assert rig.pipelines.pool.started == 1
        await assert_serves(rig)
        assert rig.pipelines.pool.started == 2  # the capped child was replaced


def one_long_batch() -> bytes:
    """Auto-fix of 2,000 columns: one batch of several seconds inside polars, with no
    progress report in it for a stop request to be noticed at."""
    header = ";".join(["sku", "title", "price", *(f"c{i}" for i in range(1997))])
    cells = ";".join(f" v{i} " for i in range(1997))
    rows = [f"S{r};Produto {r};10,00;{cells}" for r in range(1500)]
    return ("\n".join([header, *rows]) + "\n").encode()


async def _busy_child(rig: Rig) -> int:
    async with asyncio.timeout(30):
        while not rig.pipelines.pool.pids:
            await asyncio.sleep(0.05)
    return rig.pipelines.pool.pids[0]


def _pid_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.mark.slow
async def test_cancel_kills_a_job_stuck_in_one_huge_batch(
    redis_url: str, key_prefix: str, tmp_path: Path
) -> None:
    async with pipeline_worker(
        redis_url, key_prefix, tmp_path, pipeline_memory_mb=1536, csv_max_columns=2000
    ) as rig:
        uri = await rig.upload(one_long_batch(), "wide.csv")
        job = await rig.runner.enqueue("correct_csv", {"input_uri": uri})
        async with asyncio.timeout(30):
            while not rig.pipelines.pool.pids:
                await asyncio.sleep(0.05)
        pid = rig.pipelines.pool.pids[0]
        await asyncio.sleep(1.0)  # well inside the batch
        loop = asyncio.get_running_loop()
        asked = loop.time()
        await rig.runner.cancel(job.id)
        done = await rig.runner.wait(job.id, timeout=30)
        assert done.status is JobStatus.CANCELLED
        async with asyncio.timeout(10):
            while not _pid_gone(pid):
                await asyncio.sleep(0.02)
        # the child (and the GB it held) is gone within the grace plus the cancel's latency
        assert loop.time() - asked < 0.5 + 3.0
        assert pid not in rig.pipelines.pool.pids
        await assert_serves(rig)


@pytest.mark.slow
async def test_timeout_and_shutdown_kill_the_child_too(
    redis_url: str, key_prefix: str, tmp_path: Path
) -> None:
    async with pipeline_worker(
        redis_url, key_prefix, tmp_path, pipeline_memory_mb=1536, csv_max_columns=2000
    ) as rig:
        uri = await rig.upload(one_long_batch(), "wide.csv")
        params = {"input_uri": uri}
        job = await rig.runner.enqueue("correct_csv", params, timeout_seconds=2, max_tries=1)
        pid = await _busy_child(rig)
        done = await rig.runner.wait(job.id, timeout=30)
        assert done.error is not None and done.error.code == "timeout"
        async with asyncio.timeout(10):
            while not _pid_gone(pid):
                await asyncio.sleep(0.02)
        job = await rig.runner.enqueue("correct_csv", params)
        pid = await _busy_child(rig)
        worker = rig.worker
        await worker.stop(grace=0)  # shutdown: the job goes back to the queue, its child dies
        async with asyncio.timeout(10):
            while not _pid_gone(pid):
                await asyncio.sleep(0.02)
        assert (await rig.runner.get(job.id)).status is JobStatus.QUEUED
