"""The ``jobrunner`` command: the one place that wires Settings -> Registry -> JobRunner.

``asyncio.run`` appears only here, at the process edge.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click
from pydantic import ValidationError

from jobrunner.domain.models import JobRecord
from jobrunner.domain.status import JobStatus
from jobrunner.errors import ConfigError, JobRunnerError, WaitTimeoutError
from jobrunner.logs import configure_logging
from jobrunner.runtime import JobRunner
from jobrunner.settings import Settings
from jobrunner.store.blobs import FileBlobStore
from jobrunner.store.connection import redact
from jobrunner.tasks.catalog import build_registry
from jobrunner.tasks.maintenance import maintenance_cron
from jobrunner.worker.runner import WorkerRunner

T = TypeVar("T")

_SCHEMES = ("redis://", "rediss://", "unix://")


def _report(exc: JobRunnerError) -> NoReturn:
    """One line on stderr; a configuration problem exits 2, any other failure 1."""
    click.echo(f"error [{exc.code}]: {exc.message}", err=True)
    raise click.exceptions.Exit(2 if isinstance(exc, ConfigError) else 1)


def _settings(**overrides: Any) -> Settings:
    try:
        settings = Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']}" for e in exc.errors()
        )
        _report(ConfigError(f"invalid settings: {problems}"))
    configure_logging(json=settings.log_json, level=settings.log_level)
    return settings


def _run(make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine (the only ``asyncio.run``); a JobRunnerError becomes one clear line."""
    try:
        return asyncio.run(make())
    except JobRunnerError as exc:
        _report(exc)


def _client_settings(**overrides: Any) -> Settings:
    """Settings for a command that talks to a running deployment: a Redis URL is required."""
    settings = _settings(**overrides)
    if settings.redis_url is None:
        hint = "set it to your Redis, e.g. the URL `jobrunner up` prints"
        _report(ConfigError(f"JOBRUNNER_REDIS_URL is not set: {hint}"))
    _check_url(settings.redis_url)
    return settings


def _check_url(url: str) -> None:
    if not url.startswith(_SCHEMES):
        schemes = ", ".join(_SCHEMES)
        _report(ConfigError(f"JOBRUNNER_REDIS_URL {redact(url)!r} must start with {schemes}"))


def _client(use: Callable[[JobRunner], Awaitable[T]]) -> T:
    settings = _client_settings()

    async def go() -> T:
        async with JobRunner(settings, build_registry(settings)) as runner:
            return await use(runner)

    return _run(go)


def _dump(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, default=str))


def _record(record: JobRecord) -> dict[str, Any]:
    return record.model_dump(mode="json", exclude_none=True)


@click.group()
@click.version_option(package_name="jobrunner")
def main() -> None:
    """jobrunner: asyncio-native jobs on arq and Redis.

    `jobrunner up` runs everything locally and prints the JOBRUNNER_REDIS_URL the other
    commands need. Errors are one line, `error [code]: message`; exit status 1 when an
    operation fails (or a waited job did not succeed), 2 for bad usage or configuration.
    """


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="HTTP API address.")
@click.option("--port", default=8000, show_default=True, help="HTTP API port.")
@click.option("--data-dir", type=click.Path(path_type=Path), help="Redis data, blobs.")
@click.option("--concurrency", type=int, help="Jobs run at once by the in-process worker.")
def up(host: str, port: int, data_dir: Path | None, concurrency: int | None) -> None:
    """Run everything on this machine: (embedded) Redis, a worker, the demo tasks."""
    demo = None if "JOBRUNNER_DEMO_TASKS" in os.environ else True
    settings = _settings(data_dir=data_dir, concurrency=concurrency, demo_tasks=demo)
    if settings.redis_url is not None:
        _check_url(settings.redis_url)
    _run(lambda: _up(settings, host, port))


async def _up(settings: Settings, host: str, port: int) -> None:
    registry = build_registry(settings)
    async with JobRunner(settings, registry) as runner:
        worker = WorkerRunner(settings, registry, redis=runner.redis, cron_jobs=maintenance_cron())
        _print_join_help(settings, runner.redis_url, registry.names())
        http = asyncio.create_task(_serve_http(runner, host, port))
        try:
            await worker.run(handle_signals=True)
        finally:
            http.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await http


def _print_join_help(settings: Settings, redis_url: str, tasks: Iterable[str]) -> None:
    source = "external" if settings.redis_url else f"embedded, data in {settings.data_dir}"
    env = f"JOBRUNNER_REDIS_URL={redis_url} JOBRUNNER_DATA_DIR={settings.data_dir.resolve()}"
    if settings.key_prefix != Settings.model_fields["key_prefix"].default:
        env += f" JOBRUNNER_KEY_PREFIX={settings.key_prefix}"
    env += " JOBRUNNER_DEMO_TASKS=true" if settings.demo_tasks else ""
    click.echo(f"jobrunner is up. Redis ({source}): {redis_url}")
    click.echo(f"  clients:      export {env}")
    click.echo(f"  more workers: {env} arq jobrunner.worker.WorkerSettings")
    click.echo(f"  or:           {env} jobrunner worker")
    click.echo(f"  tasks: {', '.join(tasks)}")
    click.echo("  Ctrl-C or SIGTERM stops (running jobs get the shutdown grace period).", err=True)


async def _serve_http(runner: JobRunner, host: str, port: int) -> None:
    """The HTTP API's seam in ``up``: serve ``runner`` on host:port until cancelled.

    Not part of this build, so it only says so. ``_up`` already runs it as a task beside
    the worker and cancels it at shutdown: an API server goes here (its own signal
    handling off; the worker's SIGTERM/SIGINT handlers end both).
    """
    click.echo(f"  HTTP API on {host}:{port}: not part of this build yet (library and CLI only)")


@main.command()
@click.option("--queues", help="Comma separated plans, e.g. enterprise,business,pro,free.")
@click.option("--concurrency", type=int, help="Jobs run at once, split by plan shares.")
def worker(queues: str | None, concurrency: int | None) -> None:
    """Run a worker against JOBRUNNER_REDIS_URL until SIGTERM/SIGINT (graceful)."""
    settings = _client_settings(worker_queues=queues, concurrency=concurrency)
    _run(lambda: _worker(settings))


async def _worker(settings: Settings) -> None:
    registry = build_registry(settings)
    async with JobRunner(settings, registry) as runner:
        worker = WorkerRunner(settings, registry, redis=runner.redis, cron_jobs=maintenance_cron())
        await worker.run(handle_signals=True)


@main.command()
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
    parsed = _params(params)
    options = {k: v for k, v in options.items() if v is not None}

    async def go(runner: JobRunner) -> JobRecord:
        record = await runner.enqueue(task, parsed, **options)
        click.echo(f"job {record.id} {record.status.value}", err=True)
        return await _follow(runner, record.id, timeout) if wait else record

    record = _client(go)
    _dump(_record(record))
    if wait and record.status is not JobStatus.SUCCEEDED:
        raise click.exceptions.Exit(1)


def _params(text: str) -> dict[str, Any]:
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"not JSON: {exc}", param_hint="--params") from exc
    if not isinstance(parsed, dict):
        raise click.BadParameter("must be a JSON object, e.g. '{}'", param_hint="--params")
    return parsed


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


@main.command()
@click.argument("job_id")
def status(job_id: str) -> None:
    """A job's record, its result (when it succeeded) and its audit trail."""

    async def go(runner: JobRunner) -> dict[str, Any]:
        record = await runner.get(job_id)
        audit = [a.model_dump(mode="json", exclude_none=True) for a in await runner.audit(job_id)]
        result = await runner.result(job_id) if record.status is JobStatus.SUCCEEDED else None
        return {**_record(record), "result": result, "audit": audit}

    _dump(_client(go))


@main.command(name="list")
@click.option("--tenant", default="default", show_default=True)
@click.option("--status", "status_", type=click.Choice([s.value for s in JobStatus]))
@click.option("--task")
@click.option("--offset", type=int, default=0, show_default=True)
@click.option("--limit", type=int, default=20, show_default=True)
def list_jobs(tenant: str, status_: str | None, task: str | None, offset: int, limit: int) -> None:
    """A tenant's jobs, newest first."""

    async def go(runner: JobRunner) -> dict[str, Any]:
        page = await runner.list(tenant, status=status_, task=task, offset=offset, limit=limit)
        return page.model_dump(mode="json", exclude_none=True)

    _dump(_client(go))


@main.command()
@click.argument("job_id")
def cancel(job_id: str) -> None:
    """Cancel a waiting job, or ask a running one to stop."""
    _dump(_record(_client(lambda runner: runner.cancel(job_id, by="cli"))))


@main.command()
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def upload(path: Path) -> None:
    """Copy a local file into the blob store (JOBRUNNER_DATA_DIR) and print its upload:// uri."""

    async def go() -> str:
        settings = _settings()
        return await FileBlobStore(settings.blob_dir).put_file(path, scheme="upload")

    click.echo(_run(go))


@main.command()
def workers() -> None:
    """Live workers: host, pid, queues, concurrency, jobs running, last seen."""
    _dump(_client(lambda runner: runner.workers()))


if __name__ == "__main__":
    main()
