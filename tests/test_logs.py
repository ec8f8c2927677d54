"""Logs: bound to the job; every line once, in one format; expected failures one line with
their code, tracebacks only for the unexpected."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog
from structlog.testing import capture_logs

from jobrunner.domain.status import JobStatus
from jobrunner.logs import configure_logging
from jobrunner.runtime import JobRunner
from jobrunner.settings import Settings
from jobrunner.tasks.catalog import build_registry
from jobrunner.worker.runner import WorkerRunner
from tests.logtasks import TASKS

ARQ = str(Path(sys.executable).with_name("arq"))
ROOT = Path(__file__).resolve().parents[1]


async def test_task_logs_are_bound_to_the_job(runner: JobRunner, worker: WorkerRunner) -> None:
    with capture_logs() as logs:
        job = await runner.enqueue("demo.sleep", {"seconds": 0.01, "steps": 1}, tenant="acme",
                                   correlation_id="req-7")  # fmt: skip
        await runner.wait(job.id, timeout=5)
    mine = [entry for entry in logs if entry.get("job_id") == job.id]
    assert any(e["event"] == "demo.sleep finished or stopped" for e in mine)
    for entry in mine:
        assert entry["tenant"] == "acme"
        assert entry["correlation_id"] == "req-7"


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def restore_logging() -> Iterator[None]:
    saved = structlog.get_config()
    root, arq = logging.getLogger(), logging.getLogger("arq")
    state = root.handlers[:], root.level, arq.handlers[:], arq.level
    yield
    structlog.configure(**saved)
    root.handlers[:], root.level, arq.handlers[:], arq.level = state


@pytest.mark.usefixtures("restore_logging")
def test_one_handler_one_format_json_unless_a_terminal() -> None:
    arq_own = logging.StreamHandler(io.StringIO())  # what the arq command installs
    logging.getLogger("arq").addHandler(arq_own)
    piped = io.StringIO()
    configure_logging(stream=piped)
    configure_logging(stream=piped, take_over=["arq"])  # again: still one handler of ours
    assert arq_own not in logging.getLogger("arq").handlers
    structlog.get_logger("jobrunner.test").warning("from structlog", n=1)
    logging.getLogger("arq.worker").warning("from arq %s", "too")
    logging.getLogger("arq.worker").info("arq's per-job chatter")  # below WARNING: dropped
    lines = [json.loads(line) for line in piped.getvalue().splitlines()]
    assert [(line["event"], line["level"]) for line in lines] == [
        ("from structlog", "warning"),
        ("from arq too", "warning"),
    ]
    assert lines[1]["logger"] == "arq.worker" and lines[0]["n"] == 1
    terminal = Terminal()
    configure_logging(stream=terminal, json=None)
    structlog.get_logger().info("hello")
    assert "hello" in terminal.getvalue() and not terminal.getvalue().startswith("{")


def _arq_worker(env: dict[str, str], err: Path) -> subprocess.Popen[bytes]:
    with err.open("wb") as sink:
        return subprocess.Popen(
            [ARQ, "jobrunner.worker.WorkerSettings"],
            env=env,
            cwd=ROOT,  # the arq command imports tests.logtasks from here, as a user's module
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


async def _run_three(settings: Settings) -> list[Any]:
    """One job that succeeds, one that fails on purpose, one that hits a bug."""
    registry = build_registry(settings, extra=TASKS)
    async with JobRunner(settings, registry) as jr:
        jobs = [
            await jr.enqueue("demo.echo", {"ok": True}, plan="pro"),
            await jr.enqueue("demo.flaky", {"fail_times": -1}, plan="pro"),
            await jr.enqueue("tests.divide_by_zero", {}, plan="pro", max_tries=1),
        ]
        return [await jr.wait(job.id, timeout=30) for job in jobs]


@pytest.mark.slow
async def test_under_the_arq_command_each_line_appears_once(
    settings: Settings, tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBRUNNER_")}
    env.update(
        JOBRUNNER_REDIS_URL=settings.redis_url or "",
        JOBRUNNER_KEY_PREFIX=settings.key_prefix,
        JOBRUNNER_DATA_DIR=str(tmp_path),
        JOBRUNNER_DEMO_TASKS="true",
        JOBRUNNER_TASKS="tests.logtasks:TASKS",
        JOBRUNNER_CONCURRENCY="4",
        JOBRUNNER_LOG_LEVEL="debug",  # the per-job start lines too: each must show once
    )
    proc = _arq_worker(env, tmp_path / "arq.log")
    try:
        done = await _run_three(settings)
        assert [r.status for r in done] == [JobStatus.SUCCEEDED, *[JobStatus.FAILED] * 2]
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(proc.wait, 20) == 0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
    text = (tmp_path / "arq.log").read_text()
    lines = text.splitlines()
    ours = [json.loads(line) for line in lines if line.startswith("{")]
    theirs = [line for line in lines if not line.startswith("{")]  # arq's, before our hook runs
    assert len(theirs) == 2 and "Starting worker for 5 functions" in theirs[0], text
    ok, expected, bug = (r.id for r in done)
    for job in (ok, expected, bug):  # what is said about a job is said once
        said = [e["event"] for e in ours if job in json.dumps(e)]
        assert len(said) == len(set(said)) >= 2, text
    assert any(e.get("logger") == "arq.worker" for e in ours)  # arq's lines, in our format
    assert [e["event"] for e in ours if e.get("job_id") == ok] == ["job started", "job succeeded"]
    ours = [e for e in ours if e.get("logger") != "arq.worker"]
    assert [e["event"] for e in ours if e.get("job_id") == expected] == [
        "job started",
        "job failed",
    ]
    failure = [e for e in ours if e.get("job_id") == expected][-1]
    assert failure["code"] == "flaky_permanent" and "exception" not in failure
    raised = [e for e in ours if e.get("job_id") == bug]
    assert [e["event"] for e in raised] == ["job started", "task raised", "job failed"]
    assert "ZeroDivisionError: division by zero" in raised[1]["exception"]  # its traceback
    assert text.count("Traceback") == 1 and "JobFailed" not in text, text
