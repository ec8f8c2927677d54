"""A job that goes (cancelled, timed out, shut down) stops the pipeline thread it started.

Children are stopped (then killed) by the pool: see test_pool.py and test_hostile_inputs.py."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import pytest

from jobrunner.context import JobContext
from jobrunner.pipelines.pdf import extract_pdf
from jobrunner.pipelines.validation.rules import load_ruleset
from jobrunner.pipelines.validation.run import validate_csv_file
from jobrunner.tasks.inputs import PipelineStopped, in_thread, percent_reporter
from tests.pipelines.test_pdf import _make_long_pdf


def _ctx(reported: list[float] | None = None) -> JobContext:
    async def sink(percent: float, message: str | None) -> None:
        if reported is not None:
            reported.append(percent)

    return JobContext(
        job_id="job-1",
        attempt=1,
        tenant="t",
        correlation_id=None,
        task="pipeline",
        blobs=None,  # type: ignore[arg-type]  # not used here
        log=None,
        _sink=sink,
    )


async def test_cancelling_the_job_stops_its_thread_before_the_cancel_completes() -> None:
    reported: list[float] = []
    ctx = _ctx(reported)
    ctx._loop = asyncio.get_running_loop()
    report = percent_reporter(ctx)
    steps: list[int] = []
    ended: list[BaseException | None] = []
    pause = threading.Event()  # never set: wait() is the thread's stand-in for work

    def pipeline() -> None:
        try:
            for step in range(10_000):
                report(step / 10_000)
                steps.append(step)
                pause.wait(0.002)
        except BaseException as exc:
            ended.append(exc)
            raise
        ended.append(None)

    task = asyncio.create_task(in_thread(ctx, pipeline))
    while len(steps) < 5:
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert len(ended) == 1 and isinstance(ended[0], PipelineStopped)  # over when cancel is
    assert 5 <= len(steps) < 10_000
    assert ctx.cancel_token.is_set()
    await asyncio.sleep(0)
    assert reported  # progress went through while the job ran


def _stop_after(ctx: JobContext, calls: int) -> Any:
    """A progress callback that marks the job gone after ``calls`` reports."""
    report = percent_reporter(ctx)
    seen = [0]

    def on_progress(fraction: float, message: str | None = None) -> None:
        seen[0] += 1
        if seen[0] > calls:
            ctx.cancel_token.set()
        report(fraction, message)

    return on_progress


def test_pdf_extraction_stops_at_the_next_page(tmp_path: Path) -> None:
    source = tmp_path / "long.pdf"
    _make_long_pdf(source, 20)
    outputs = {"pages_out": tmp_path / "p.jsonl", "chunks_out": tmp_path / "c.jsonl"}
    ctx = _ctx()
    with pytest.raises(PipelineStopped):
        extract_pdf(
            source, password=None, max_pages=None, on_progress=_stop_after(ctx, 3), **outputs
        )
    # the fourth page was written before its report learned that the job had gone
    assert len((tmp_path / "p.jsonl").read_text().splitlines()) == 4


def test_csv_validation_stops_at_the_next_batch(tmp_path: Path) -> None:
    rows = "".join(f"S{i};Produto {i};10,00;1;new;MLB1\n" for i in range(5_000))
    source = tmp_path / "in.csv"
    source.write_text("sku;title;price;stock;condition;category_id\n" + rows)
    ctx = _ctx()
    with pytest.raises(PipelineStopped):
        validate_csv_file(
            source,
            ruleset=load_ruleset("default", "mercado_livre"),
            report_path=tmp_path / "report.csv",
            batch_rows=1_000,
            on_progress=_stop_after(ctx, 1),
        )
