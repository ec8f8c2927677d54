"""Commands on jobs: enqueue (and follow), status, list, cancel; the live workers and queues."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import sys
from typing import Any

import click

from jobrunner.cli.common import dump, parse_params, record_json, with_client
from jobrunner.domain.models import JobPage, JobRecord
from jobrunner.domain.status import JobStatus
from jobrunner.errors import WaitTimeoutError
from jobrunner.runtime import JobRunner


@click.command()
@click.argument("task")
@click.option("--params", default="{}", show_default=True, help="Task params as a JSON object.")
@click.option("--tenant", default="default", show_default=True)
@click.option("--plan", help="Queue to use (default: the task's plan or JOBRUNNER_DEFAULT_PLAN).")
@click.option("--priority", type=int, default=0, show_default=True, help="0-9, higher first.")
@click.option("--idempotency-key", help="Same key and params: the same job, not a new one.")
@click.option("--defer", "defer_seconds", type=float, help="Seconds before it may start.")
@click.option("--ttl", "ttl_seconds", type=float, help="Expire if not started within this.")
@click.option("--wait", is_flag=True, help="Follow progress until the job finishes.")
@click.option("--timeout", type=float, help="With --wait: give up after this many seconds.")
def enqueue(task: str, params: str, wait: bool, timeout: float | None, **options: Any) -> None:
    """Enqueue TASK and print its record; with --wait follow it, exit 0 only if it succeeded."""
    parsed = parse_params(params, task)
    options = {k: v for k, v in options.items() if v is not None}

    async def go(runner: JobRunner) -> JobRecord:
        record = await runner.enqueue(task, parsed, **options)
        click.echo(f"job {record.id} {record.status.value}", err=True)
        return await _follow(runner, record.id, timeout) if wait else record

    record = with_client(go)
    dump(record_json(record))
    if wait and record.status is not JobStatus.SUCCEEDED:
        raise click.exceptions.Exit(1)


async def _follow(runner: JobRunner, job_id: str, timeout: float | None) -> JobRecord:
    """A progress bar on stderr until the job ends; WaitTimeoutError after ``timeout``."""
    try:
        async with contextlib.aclosing(runner.watch(job_id)) as events, asyncio.timeout(timeout):
            with click.progressbar(length=100, label=job_id[:8], file=sys.stderr) as bar:
                async for event in events:
                    bar.label = f"{job_id[:8]} {event.status.value} {event.message or ''}"[:60]
                    bar.update(max(0, int(event.progress) - bar.pos))
                    if event.is_terminal:
                        break
    except TimeoutError as exc:
        raise WaitTimeoutError(
            f"job {job_id} not finished after {timeout}s (it keeps running)", job_id=job_id
        ) from exc
    return await runner.get(job_id)


@click.command()
@click.argument("job_id")
def status(job_id: str) -> None:
    """A job's record, its result (when it succeeded) and its audit trail."""

    async def go(runner: JobRunner) -> dict[str, Any]:
        record = await runner.get(job_id)
        audit = [a.model_dump(mode="json", exclude_none=True) for a in await runner.audit(job_id)]
        result = await runner.result(job_id) if record.status is JobStatus.SUCCEEDED else None
        return {**record_json(record), "result": result, "audit": audit}

    dump(with_client(go))


@click.command(name="list")
@click.option("--tenant", default="default", show_default=True)
@click.option("--status", "status_", type=click.Choice([s.value for s in JobStatus]))
@click.option("--task")
@click.option("--offset", type=int, default=0, show_default=True)
@click.option("--limit", type=int, default=20, show_default=True)
def list_jobs(tenant: str, status_: str | None, task: str | None, offset: int, limit: int) -> None:
    """A tenant's jobs, newest first; records that do not decode are named on stderr."""

    async def go(runner: JobRunner) -> JobPage:
        return await runner.list(tenant, status=status_, task=task, offset=offset, limit=limit)

    page = with_client(go)
    dump(page.model_dump(mode="json", exclude_none=True))
    if page.skipped:  # listed in the JSON too; one line on stderr so nobody misses it
        ids = ", ".join(f"{s.id} ({s.code})" for s in page.skipped)
        click.echo(f"warning: skipped {len(page.skipped)} undecodable record(s): {ids}", err=True)


@click.command()
@click.argument("job_id")
def cancel(job_id: str) -> None:
    """Cancel a waiting job, or ask a running one to stop."""
    dump(record_json(with_client(lambda runner: runner.cancel(job_id, by="cli"))))


@click.command()
def workers() -> None:
    """Live workers: host, pid, queues, concurrency, jobs running, last seen."""
    dump(with_client(lambda runner: runner.workers()))


@click.command()
def queues() -> None:
    """Per plan: jobs queued, running and deferred, and the live workers serving it."""

    async def go(runner: JobRunner) -> list[dict[str, Any]]:
        return [dataclasses.asdict(stats) for stats in await runner.queues()]

    dump(with_client(go))
