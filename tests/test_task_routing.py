"""Jobs never wait on a worker that cannot run them: workers advertise their tasks; a worker
without a job's task puts it back for one that has it (a bounded number of times) or fails it
with task_not_registered, naming itself; enqueue warns when no live worker has the task."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from jobrunner.domain.status import JobStatus
from jobrunner.registry import Registry
from jobrunner.runtime import JobRunner
from jobrunner.settings import Settings
from jobrunner.store.workers import WorkerRegistry
from jobrunner.tasks.catalog import build_registry
from jobrunner.worker.runner import WorkerRunner
from tests.clitools import CLI, Invoke, as_json, clean_environ, kill_group
from tests.polling import eventually
from tests.routedtasks import TASKS
from tests.test_examples import assert_embed_output, run_example

ROOT = Path(__file__).resolve().parents[1]
ROUTED = "tests.routedtasks:TASKS"
Spawn = Callable[..., subprocess.Popen[bytes]]


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[JobRunner]:
    """A client that knows the routed tasks (as an app embedding jobrunner would)."""
    async with JobRunner(settings, build_registry(settings, extra=TASKS)) as jr:
        yield jr


@pytest.fixture
def spawn(settings: Settings, tmp_path: Path) -> Iterator[Spawn]:
    """`jobrunner worker` processes on the test's Redis; ``tasks``: JOBRUNNER_TASKS."""
    procs: list[subprocess.Popen[bytes]] = []

    def start(name: str, *, concurrency: int = 2, **extra: str) -> subprocess.Popen[bytes]:
        env = clean_environ(
            JOBRUNNER_REDIS_URL=settings.redis_url or "",
            JOBRUNNER_KEY_PREFIX=settings.key_prefix,
            JOBRUNNER_DATA_DIR=str(tmp_path / name),
            JOBRUNNER_DEMO_TASKS="true",
            JOBRUNNER_PIPELINE_TASKS="false",
            JOBRUNNER_HEARTBEAT_SECONDS="0.5",
            **extra,
        )
        with (tmp_path / f"{name}.log").open("wb") as sink:
            proc = subprocess.Popen(
                [*CLI, "worker", "--queues", "pro", "--concurrency", str(concurrency)],
                env=env,
                cwd=ROOT,  # imports tests.routedtasks from here, as a user's module
                stdout=sink,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        kill_group(proc)


async def live_workers(client: JobRunner, count: int) -> list[dict[str, Any]]:
    found = await eventually(client.workers, lambda w: len(w) >= count, timeout=30)
    assert len(found) == count, found
    return found


async def test_a_job_for_a_task_no_worker_has_fails_at_once_naming_the_worker(
    client: JobRunner, spawn: Spawn
) -> None:
    spawn("plain")
    (plain,) = await live_workers(client, 1)
    assert "tests.routed_echo" not in plain["tasks"] and "demo.echo" in plain["tasks"]
    started = time.monotonic()
    with capture_logs() as logs:
        job = await client.enqueue("tests.routed_echo", {}, plan="pro")
    assert [(e["event"], e.get("task")) for e in logs if e["log_level"] == "warning"] == [
        (
            "no live worker on this queue has the task; its jobs fail (task_not_registered)",
            "tests.routed_echo",
        )
    ]
    done = await client.wait(job.id, timeout=15)
    assert time.monotonic() - started < 5
    assert done.status is JobStatus.FAILED and done.error is not None
    assert done.error.code == "task_not_registered"
    assert plain["id"] in done.error.message and plain["host"] in done.error.message
    assert "'tests.routed_echo'" in done.error.message
    failed = [a for a in await client.audit(job.id) if a.event == "failed"]
    assert [a.worker_id for a in failed] == [plain["id"]]


async def test_with_two_workers_the_job_runs_on_the_one_that_has_its_task(
    client: JobRunner, spawn: Spawn
) -> None:
    spawn("plain")
    spawn("routed", concurrency=1, JOBRUNNER_TASKS=ROUTED)
    workers = await live_workers(client, 2)
    routed = next(w for w in workers if "tests.routed_echo" in w["tasks"])
    plain = next(w for w in workers if w is not routed)
    # the routed worker's only slot is busy: the plain worker (idle) pulls the next job
    hold = await client.enqueue("tests.routed_hold", {"seconds": 2}, plan="pro")
    await eventually(lambda: client.get(hold.id), lambda r: r.status is JobStatus.RUNNING, 15)
    job = await client.enqueue("tests.routed_echo", {"value": "here"}, plan="pro")
    done = await client.wait(job.id, timeout=30)
    assert done.status is JobStatus.SUCCEEDED, done.error
    assert done.worker_id == routed["id"]
    assert await client.result(job.id) == {"value": "here", "task": "tests.routed_echo"}
    assert done.attempts == 1  # a bounce gives its try back
    bounced = [a for a in await client.audit(job.id) if a.event == "bounced"]
    assert bounced and {a.worker_id for a in bounced} == {plain["id"]}
    assert (await client.get(hold.id)).worker_id == routed["id"]


async def test_bounces_are_bounded_then_the_job_fails(
    settings: Settings, client: JobRunner
) -> None:
    # a live worker that advertises the task but never takes a job (its slots stay busy)
    busy = "busy-host-1-abcdef"
    await WorkerRegistry(client.redis, client.keys).beat(
        busy,
        {"host": "busy-host", "queues": ["pro"], "tasks": ["tests.routed_echo"]},
        now_ms=time.time() * 1000,
        ttl_seconds=60,
        running={},
        lease_ms=1000,
    )
    bounded = settings.model_copy(update={"task_bounce_limit": 2, "poll_delay_seconds": 0.1})
    registry: Registry = build_registry(bounded)
    async with WorkerRunner(bounded, registry, redis=client.redis, queues=["pro"]) as worker:
        job = await client.enqueue("tests.routed_echo", {}, plan="pro")
        done = await client.wait(job.id, timeout=15)
    assert done.status is JobStatus.FAILED and done.error is not None
    assert done.error.code == "task_not_registered"
    assert worker.worker_id in done.error.message
    assert "went back to queue 'pro' 2 times for busy-host-1-abcdef" in done.error.message
    events = [a.event for a in await client.audit(job.id)]
    assert events.count("bounced") == 2 and events[-1] == "failed"


def test_the_cli_lists_tasks_warns_and_reports_the_failure(
    invoke: Invoke, worker_process: subprocess.Popen[bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    (entry,) = as_json(invoke("workers", "--json"))
    assert "demo.echo" in entry["tasks"] and "tests.routed_echo" not in entry["tasks"]
    header, row = invoke("workers").stdout.splitlines()
    assert header.split()[-1] == "TASKS" and "demo." in row
    monkeypatch.setenv("JOBRUNNER_TASKS", ROUTED)  # the client has a task the worker lacks
    waited = invoke("enqueue", "tests.routed_echo", "--plan", "pro", "--wait", "--timeout", "20")
    assert waited.exit_code == 1, waited.output
    warnings = [line for line in waited.stderr.splitlines() if line.startswith("warning:")]
    assert warnings == [
        "warning: no live worker on queue 'pro' has task 'tests.routed_echo': the job fails "
        "with task_not_registered unless one that has it takes it (see `jobrunner workers`)"
    ]
    assert "failed [task_not_registered]: worker " + entry["id"] in waited.stderr


async def test_the_embedding_example_beside_a_worker_without_its_task(
    client: JobRunner, spawn: Spawn, tmp_path: Path
) -> None:
    """The issue's case: examples/embed_in_app.py on a Redis where another worker (as under
    `jobrunner up`) consumes the same queue without the app's task."""
    spawn("up-like", concurrency=4)
    await live_workers(client, 1)
    done = await asyncio.to_thread(
        run_example,
        "embed_in_app.py",
        tmp_path,
        JOBRUNNER_REDIS_URL=client.redis_url,
        JOBRUNNER_KEY_PREFIX=client.settings.key_prefix,
    )
    assert_embed_output(done)
