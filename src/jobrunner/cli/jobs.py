"""Commands on jobs: enqueue, wait, status, list, cancel, retry; the live workers and queues.

A job is named by its id or a unique prefix of it (at least 8 characters, as shown beside the
progress bar and in `jobrunner list`).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import click

from jobrunner.cli import show
from jobrunner.cli.common import dump, json_option, parse_params, record_json, warn, with_client
from jobrunner.cli.follow import Ended, announce, check_served, finish, follow, now
from jobrunner.domain.models import JobPage
from jobrunner.domain.status import JobStatus
from jobrunner.runtime import JobRunner
from jobrunner.submission import parse_request

_wait = click.option(
    "--wait", is_flag=True, help="Follow it to the end, print its result; exit 0 only on success."
)
_timeout = click.option("--timeout", type=float, help="Stop waiting after this many seconds.")


@click.command()
@click.argument("task")
@click.option("--params", default="{}", show_default=True, help="Task params as a JSON object.")
@click.option("--tenant", default="default", show_default=True)
@click.option("--plan", help="Queue to use (default: the task's plan or JOBRUNNER_DEFAULT_PLAN).")
@click.option("--priority", type=int, default=0, show_default=True, help="0-9, higher first.")
@click.option("--idempotency-key", help="Same key and params: the same job, not a new one.")
@click.option("--defer", "defer_seconds", type=float, help="Seconds before it may start.")
@click.option("--ttl", "ttl_seconds", type=float, help="Expire if not started within this.")
@_wait
@_timeout
@json_option
def enqueue(
    task: str, params: str, wait: bool, timeout: float | None, as_json: bool, **options: Any
) -> None:
    """Enqueue TASK (see `jobrunner tasks`) and print its id; --wait follows it to the end."""
    request = {"task": task, "params": parse_params(params, task)}
    request.update({k: v for k, v in options.items() if v is not None})

    async def go(runner: JobRunner) -> Ended:
        submitted = await runner.submit_or_replay(parse_request(request))
        record = submitted.record
        if not as_json:
            announce(record, replayed=submitted.replayed, err=wait)
        await check_served(runner, record)
        return await follow(runner, record, timeout) if wait else Ended(record)

    ended = with_client(go)
    if wait:
        finish(ended, as_json=as_json)
    elif as_json:
        dump(record_json(ended.record))


@click.command()
@click.argument("job_id")
@_timeout
@json_option
def wait(job_id: str, timeout: float | None, as_json: bool) -> None:
    """Follow a job to its end and print its result; exit 0 only if it succeeded."""

    async def go(runner: JobRunner) -> Ended:
        record = await runner.get(await runner.resolve_id(job_id))
        await check_served(runner, record)
        return await follow(runner, record, timeout)

    finish(with_client(go, tasks=False), as_json=as_json)


@click.command()
@click.argument("job_id")
@_wait
@_timeout
@json_option
def retry(job_id: str, wait: bool, timeout: float | None, as_json: bool) -> None:
    """Enqueue a failed, cancelled or expired job again, as a new job (same task and params)."""

    async def go(runner: JobRunner) -> Ended:
        record = await runner.retry(await runner.resolve_id(job_id))
        if not as_json:
            announce(record, retry_of=record.retry_of, err=wait)
        await check_served(runner, record)
        return await follow(runner, record, timeout) if wait else Ended(record)

    ended = with_client(go)
    if wait:
        finish(ended, as_json=as_json)
    elif as_json:
        dump(record_json(ended.record))


@click.command()
@click.argument("job_id")
@json_option
def status(job_id: str, as_json: bool) -> None:
    """A job's record, its result (when it succeeded) and its audit trail as a timeline."""

    async def go(runner: JobRunner) -> tuple[Any, ...]:
        full = await runner.resolve_id(job_id)
        record = await runner.get(full)
        result = await runner.result(full) if record.status is JobStatus.SUCCEEDED else None
        return record, result, await runner.audit(full)

    record, result, audit = with_client(go, tasks=False)
    if as_json:
        trail = [a.model_dump(mode="json", exclude_none=True) for a in audit]
        dump({**record_json(record), "result": result, "audit": trail})
        return
    lines = show.summary(record, now())
    lines += ["params", *_indent(show.pretty(record.params))]
    if result is not None:
        lines += ["result", *_indent(show.pretty(result))]
    lines += ["timeline", *_indent("\n".join(show.timeline(audit)))]
    click.echo("\n".join(lines))


def _indent(text: str) -> list[str]:
    return ["  " + line for line in text.splitlines()]


@click.command(name="list")
@click.option("--tenant", default="default", show_default=True)
@click.option("--all-tenants", is_flag=True, help="Every tenant's jobs (an operator's view).")
@click.option("--status", "status_", type=click.Choice([s.value for s in JobStatus]))
@click.option("--task")
@click.option("--offset", type=int, default=0, show_default=True)
@click.option("--limit", type=int, default=20, show_default=True)
@json_option
def list_jobs(tenant: str, all_tenants: bool, as_json: bool, **filters: Any) -> None:
    """A tenant's jobs (or every tenant's), newest first; records that do not decode are
    named on stderr."""
    wanted = {"status": filters.pop("status_"), **filters}

    async def go(runner: JobRunner) -> JobPage:
        return await runner.list(None if all_tenants else tenant, **wanted)

    page = with_client(go, tasks=False)
    if page.skipped:  # listed in the JSON too; one line on stderr so nobody misses it
        ids = ", ".join(f"{s.id} ({s.code})" for s in page.skipped)
        warn(f"skipped {len(page.skipped)} undecodable record(s): {ids}")
    if as_json:
        dump(page.model_dump(mode="json", exclude_none=True))
        return
    whose = "all tenants" if all_tenants else f"tenant {tenant}"
    _print_page(page, whose, filtered=bool(filters["task"] or wanted["status"]))


def _print_page(page: JobPage, whose: str, *, filtered: bool) -> None:
    if not page.items:
        click.echo(f"no jobs ({whose}{', with these filters' if filtered else ''})")
        return
    click.echo("\n".join(show.jobs_table(page.items, now(), tenants=whose == "all tenants")))
    first, last = page.offset + 1, page.offset + len(page.items)
    more = f"; more with --offset {last}" if last < page.total else ""
    click.echo(f"{first}-{last} of {page.total} ({whose}){more}")


@click.command()
@click.argument("job_id")
@json_option
def cancel(job_id: str, as_json: bool) -> None:
    """Cancel a waiting job, or ask a running one to stop; prints the state it leads to."""

    async def go(runner: JobRunner) -> Any:
        return await runner.cancel(await runner.resolve_id(job_id), by="cli")

    record = with_client(go, tasks=False)
    if as_json:
        dump(record_json(record))
    elif record.status is JobStatus.CANCELLED:
        never = " (it had not started)" if record.started_at is None else ""
        click.echo(f"job {record.id} cancelled{never}")
    else:
        click.echo(
            f"job {record.id} is {record.status.value}: asked to stop, it ends within about "
            f"a second (`jobrunner wait {show.short(record.id)}` follows it)"
        )


@click.command()
@json_option
def workers(as_json: bool) -> None:
    """Live workers: id (host-pid-…), queues, jobs running of its concurrency, last seen."""
    found = with_client(lambda runner: runner.workers(), tasks=False)
    if as_json:
        dump(found)
    elif not found:
        click.echo("no live workers (start one: `jobrunner worker`, or `jobrunner up`)")
    else:
        click.echo("\n".join(show.workers_table(found, now())))


@click.command()
@json_option
def queues(as_json: bool) -> None:
    """Per plan: jobs queued, running and deferred, and the live workers serving it."""

    async def go(runner: JobRunner) -> list[dict[str, Any]]:
        return [dataclasses.asdict(stats) for stats in await runner.queues()]

    stats = with_client(go, tasks=False)
    if as_json:
        dump(stats)
    else:
        click.echo("\n".join(show.queues_table(stats)))
