"""Following a job to its end: progress on stderr, then its result (or its error) and an exit
status by outcome (0 succeeded, 1 anything else). Shared by enqueue/retry --wait and wait."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import click

from jobrunner.cli.common import dump, record_json, warn
from jobrunner.cli.show import outcome, pretty, short
from jobrunner.domain.models import JobRecord
from jobrunner.domain.status import WAITING, JobStatus
from jobrunner.domain.task_routing import Coverage, coverage
from jobrunner.errors import WaitTimeoutError
from jobrunner.runtime import JobRunner


@dataclass(frozen=True)
class Ended:
    """A followed job as it ended, with its result when it succeeded."""

    record: JobRecord
    result: Any = None


def announce(
    record: JobRecord, *, replayed: bool = False, retry_of: str | None = None, err: bool = False
) -> None:
    """What enqueue (or retry) did, for a person, with the full id. ``err``: on stderr, when
    stdout is kept for the result (--wait)."""
    if replayed:
        key = record.idempotency_key
        state = record.status.value
        click.echo(f"job {record.id} already exists for key {key!r}: {state}", err=err)
        return
    what = f"retry of {short(retry_of)}" if retry_of else record.task
    when = ""
    if record.scheduled_at > record.created_at:
        when = f", starts {record.scheduled_at.astimezone():%Y-%m-%d %H:%M:%S}"
    click.echo(f"queued {what} as job {record.id} (plan {record.plan}{when})", err=err)


async def check_served(runner: JobRunner, record: JobRecord) -> bool:
    """Say so when no live worker consumes the job's queue (it would wait for one), or none
    of those that do has its task (one of them fails it)."""
    if record.is_terminal:
        return True
    found = coverage(await runner.workers(), record.plan, record.task)
    if found is Coverage.NO_WORKER:
        warn(
            f"no worker is serving queue {record.plan!r}: the job waits until one starts "
            "(`jobrunner up` or `jobrunner worker`; see `jobrunner workers`)"
        )
    elif found is Coverage.NO_TASK:
        warn(
            f"no live worker on queue {record.plan!r} has task {record.task!r}: the job fails "
            "with task_not_registered unless one that has it takes it (see `jobrunner workers`)"
        )
    return found is Coverage.SERVED


async def follow(runner: JobRunner, record: JobRecord, timeout: float | None) -> Ended:
    """Progress on stderr until the job ends; WaitTimeoutError after ``timeout`` seconds."""
    job_id = record.id
    try:
        async with asyncio.timeout(timeout):
            await _progress(runner, job_id)
    except TimeoutError as exc:
        current = await runner.get(job_id)
        why = ""
        if current.status in WAITING and not await runner.serves(current.plan):
            why = f": no worker is serving queue {current.plan!r}"
        raise WaitTimeoutError(
            f"job {job_id} still {current.status.value} after {timeout:g}s{why} "
            "(it is not cancelled; `jobrunner wait` follows it again)",
            job_id=job_id,
        ) from exc
    final = await runner.get(job_id)
    result = await runner.result(job_id) if final.status is JobStatus.SUCCEEDED else None
    return Ended(final, result)


async def _progress(runner: JobRunner, job_id: str) -> None:
    async with contextlib.aclosing(runner.watch(job_id)) as events:
        with click.progressbar(length=100, label=short(job_id), file=sys.stderr) as bar:
            async for event in events:
                bar.label = f"{short(job_id)} {event.status.value} {event.message or ''}"[:60]
                bar.update(max(0, int(event.progress) - bar.pos))
                if event.is_terminal:
                    break


def finish(ended: Ended, *, as_json: bool) -> None:
    """Print how the job ended and its result; exit 1 unless it succeeded."""
    record = ended.record
    if as_json:
        dump({**record_json(record), "result": ended.result})
    else:
        click.echo(outcome(record), err=True)
        if record.status is JobStatus.SUCCEEDED and ended.result is not None:
            click.echo(pretty(ended.result))
    if record.status is not JobStatus.SUCCEEDED:
        raise click.exceptions.Exit(1)


def now() -> datetime:
    return datetime.now(tz=UTC)
