"""Commands that run long-lived processes: ``up`` (everything on one machine) and ``worker``."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import Iterable
from pathlib import Path

import click

from jobrunner.api.server import bind
from jobrunner.cli.common import check_url, client_settings, load_settings, report, run
from jobrunner.cli.devapi import (
    admin_token,
    dev_key_text,
    ensure_dev_key,
    print_api_help,
    serve_http,
)
from jobrunner.errors import ConfigError
from jobrunner.runtime import JobRunner
from jobrunner.settings import Settings
from jobrunner.tasks.catalog import build_registry
from jobrunner.tasks.maintenance import maintenance_cron
from jobrunner.worker.runner import WorkerRunner


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="HTTP API address.")
@click.option(
    "--port", default=8000, show_default=True, type=click.IntRange(1, 65535), help="HTTP API port."
)
@click.option("--data-dir", type=click.Path(path_type=Path), help="Redis data, blobs.")
@click.option("--concurrency", type=int, help="Jobs run at once by the in-process worker.")
def up(host: str, port: int, data_dir: Path | None, concurrency: int | None) -> None:
    """Run everything on this machine: (embedded) Redis, a worker, the demo tasks, the API."""
    demo = None if "JOBRUNNER_DEMO_TASKS" in os.environ else True
    settings = load_settings(data_dir=data_dir, concurrency=concurrency, demo_tasks=demo)
    if settings.redis_url is not None:
        check_url(settings.redis_url)
    settings, token_source = admin_token(settings)
    dev_key = dev_key_text(settings)
    try:
        sock = bind(host, port)
    except ConfigError as exc:
        report(exc)
    run(lambda: _up(settings, sock, token_source, dev_key))


async def _up(settings: Settings, sock: socket.socket, token_source: str, dev_key: str) -> None:
    registry = build_registry(settings)
    async with JobRunner(settings, registry) as runner:
        await ensure_dev_key(runner, dev_key)
        worker = WorkerRunner(settings, registry, redis=runner.redis, cron_jobs=maintenance_cron())
        _print_join_help(settings, runner.redis_url, registry.names())
        host, port = sock.getsockname()[:2]
        print_api_help(settings, f"http://{host}:{port}", token_source, dev_key)
        http = asyncio.create_task(serve_http(runner, settings, sock))
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


@click.command()
@click.option("--queues", help="Comma separated plans, e.g. enterprise,business,pro,free.")
@click.option("--concurrency", type=int, help="Jobs run at once, split by plan shares.")
def worker(queues: str | None, concurrency: int | None) -> None:
    """Run a worker against JOBRUNNER_REDIS_URL until SIGTERM/SIGINT (graceful)."""
    settings = client_settings(worker_queues=queues, concurrency=concurrency)
    run(lambda: _worker(settings))


async def _worker(settings: Settings) -> None:
    registry = build_registry(settings)
    async with JobRunner(settings, registry) as runner:
        worker = WorkerRunner(settings, registry, redis=runner.redis, cron_jobs=maintenance_cron())
        await worker.run(handle_signals=True)
