"""The ``jobrunner`` command: the one place that wires Settings -> Registry -> JobRunner.

``asyncio.run`` appears only here, at the process edge.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import click
from pydantic import ValidationError

from jobrunner.domain.models import JobRecord
from jobrunner.domain.status import JobStatus
from jobrunner.errors import ConfigError, JobRunnerError
from jobrunner.logs import configure_logging
from jobrunner.runtime import JobRunner
from jobrunner.settings import Settings
from jobrunner.store.blobs import FileBlobStore
from jobrunner.tasks.catalog import build_registry
from jobrunner.tasks.maintenance import maintenance_cron
from jobrunner.worker.runner import WorkerRunner

T = TypeVar("T")


def _settings(**overrides: Any) -> Settings:
    try:
        settings = Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        raise ConfigError(f"invalid settings: {exc}") from exc
    configure_logging(json=settings.log_json, level=settings.log_level)
    return settings


def _run(make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine; a JobRunnerError becomes one clear line and exit status 1."""
    try:
        return asyncio.run(make())
    except JobRunnerError as exc:
        click.echo(f"error [{exc.code}]: {exc.message}", err=True)
        sys.exit(1)


def _need_url(settings: Settings) -> None:
    if settings.redis_url is None:
        raise ConfigError(
            "JOBRUNNER_REDIS_URL is not set; start `jobrunner up` and use the URL it prints"
        )


def _client(use: Callable[[JobRunner], Awaitable[T]]) -> T:
    async def go() -> T:
        settings = _settings()
        _need_url(settings)
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
    """jobrunner: asyncio-native jobs on arq and Redis."""


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="HTTP API address.")
@click.option("--port", default=8000, show_default=True, help="HTTP API port.")
@click.option("--data-dir", type=click.Path(path_type=Path), help="Redis data, blobs.")
@click.option("--concurrency", type=int, help="Jobs run at once by the in-process worker.")
def up(host: str, port: int, data_dir: Path | None, concurrency: int | None) -> None:
    """Run everything on this machine: (embedded) Redis, a worker, the demo tasks."""
    demo = None if "JOBRUNNER_DEMO_TASKS" in os.environ else True
    overrides = {"data_dir": data_dir, "concurrency": concurrency, "demo_tasks": demo}
    _run(lambda: _up(_settings(**overrides), host, port))


async def _up(settings: Settings, host: str, port: int) -> None:
    registry = build_registry(settings)
    async with JobRunner(settings, registry) as runner:
        worker = WorkerRunner(settings, registry, redis=runner.redis, cron_jobs=maintenance_cron())
        source = "external" if settings.redis_url else f"embedded, data in {settings.data_dir}"
        env = f"JOBRUNNER_REDIS_URL={runner.redis_url}"
        env += f" JOBRUNNER_DATA_DIR={settings.data_dir.resolve()}"
        env += " JOBRUNNER_DEMO_TASKS=true" if settings.demo_tasks else ""
        click.echo(f"jobrunner is up. Redis ({source}): {runner.redis_url}")
        click.echo(f"  clients:      export {env}")
        click.echo(f"  more workers: {env} arq jobrunner.worker.WorkerSettings")
        click.echo(f"  or:           {env} jobrunner worker")
        click.echo(f"  tasks: {', '.join(registry.names())}")
        click.echo(
            f"  HTTP API on {host}:{port}: not part of this build yet (library and CLI only)"
        )
        click.echo("  Ctrl-C stops (running jobs get the shutdown grace period).", err=True)
        sys.stdout.flush()
        await worker.run(handle_signals=True)


@main.command()
@click.option("--queues", help="Comma separated plans, e.g. enterprise,business,pro,free.")
@click.option("--concurrency", type=int, help="Jobs run at once, split by plan shares.")
def worker(queues: str | None, concurrency: int | None) -> None:
    """Run a worker against JOBRUNNER_REDIS_URL until SIGTERM/SIGINT (graceful)."""
    _run(lambda: _worker(_settings(worker_queues=queues, concurrency=concurrency)))


async def _worker(settings: Settings) -> None:
    _need_url(settings)
    registry = build_registry(settings)
    async with JobRunner(settings, registry) as runner:
        worker = WorkerRunner(settings, registry, redis=runner.redis, cron_jobs=maintenance_cron())
        await worker.run(handle_signals=True)


@main.command()
@click.argument("task")
@click.option("--params", default="{}", show_default=True, help="Task params as JSON.")
@click.option("--tenant", default="default", show_default=True)
@click.option("--plan")
@click.option("--priority", type=int, default=0, show_default=True)
@click.option("--idempotency-key")
@click.option("--defer", "defer_seconds", type=float, help="Seconds before it may start.")
@click.option("--ttl", "ttl_seconds", type=float, help="Expire if not started within this.")
@click.option("--wait", is_flag=True, help="Follow progress until the job finishes.")
@click.option("--timeout", type=float, help="With --wait: give up after this many seconds.")
def enqueue(task: str, params: str, wait: bool, timeout: float | None, **options: Any) -> None:
    """Enqueue TASK; with --wait show a progress bar and exit 0 only if it succeeded."""
    try:
        parsed = json.loads(params)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"not JSON: {exc}", param_hint="--params") from exc
    options = {k: v for k, v in options.items() if v is not None}

    async def go(runner: JobRunner) -> JobRecord:
        record = await runner.enqueue(task, parsed, **options)
        click.echo(f"job {record.id} {record.status.value}", err=True)
        return await _follow(runner, record.id, timeout) if wait else record

    record = _client(go)
    _dump(_record(record))
    if wait and record.status is not JobStatus.SUCCEEDED:
        sys.exit(1)


async def _follow(runner: JobRunner, job_id: str, timeout: float | None) -> JobRecord:
    with click.progressbar(length=100, label=job_id[:8], file=sys.stderr) as bar:
        shown = 0.0
        async with asyncio.timeout(timeout):
            async for event in runner.watch(job_id):
                bar.label = f"{job_id[:8]} {event.status.value} {event.message or ''}"[:60]
                bar.update(int(event.progress - shown))
                shown = float(int(event.progress))
                if event.is_terminal:
                    break
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
