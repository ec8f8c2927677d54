"""Commands that run long-lived processes: ``up`` (everything on one machine) and ``worker``.

Both stop as a terminal expects (see stopping.py); ``up`` owns its data dir and its embedded
Redis (see env.py), which it stops last.
"""

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
from jobrunner.cli.env import client_env, env_command, exports, extra_env, own_data_dir
from jobrunner.cli.stopping import StopSignals, run_worker
from jobrunner.datalock import ensure_free
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
@click.option(
    "--redis-port", type=int, help="Port of the embedded Redis (default: the one it had before)."
)
def up(
    host: str, port: int, data_dir: Path | None, concurrency: int | None, redis_port: int | None
) -> None:
    """Run everything on this machine: (embedded) Redis, a worker, the demo tasks, the API.

    One `up` per data dir. Ctrl-C stops it: running jobs get the shutdown grace period,
    a second Ctrl-C stops them at once (they run again at the next start).
    """
    demo = None if "JOBRUNNER_DEMO_TASKS" in os.environ else True
    settings = load_settings(
        data_dir=data_dir, concurrency=concurrency, demo_tasks=demo, embedded_redis_port=redis_port
    )
    if settings.redis_url is not None:
        check_url(settings.redis_url)
    # a second `up` hears about the first one, not about the API port that one holds
    run(lambda: ensure_free(settings.data_dir))
    settings, token_source = admin_token(settings)
    dev_key = dev_key_text(settings)
    try:
        sock = bind(host, port)
    except ConfigError as exc:
        report(exc)
    run(lambda: _up(settings, sock, token_source, dev_key), fast_loop=True)


async def _up(settings: Settings, sock: socket.socket, token_source: str, dev_key: str) -> None:
    async with StopSignals() as stop, own_data_dir(settings) as owned:
        registry = build_registry(owned)
        async with JobRunner(owned, registry) as runner:
            await ensure_dev_key(runner, dev_key)
            worker = WorkerRunner(
                owned, registry, redis=runner.redis, cron_jobs=maintenance_cron(owned)
            )
            _print_join_help(settings, runner.redis_url, registry.names())
            host, port = sock.getsockname()[:2]
            print_api_help(owned, f"http://{host}:{port}", token_source, dev_key)
            _print_how_to_stop(owned)
            http = asyncio.create_task(serve_http(runner, owned, sock))
            try:
                await run_worker(worker, stop)
            finally:
                http.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await http


def _print_join_help(settings: Settings, redis_url: str, tasks: Iterable[str]) -> None:
    data_dir = settings.data_dir.resolve()
    source = "external" if settings.redis_url else f"embedded, data in {data_dir}"
    env = client_env(redis_url, str(data_dir), extra_env(settings))
    click.echo(f"jobrunner is up. Redis ({source}): {redis_url}")
    click.echo(f"  tasks: {', '.join(tasks)}")
    click.echo(f"  another terminal: {env_command(settings)}")
    click.echo(f"    (it runs: {exports(env)})")
    click.echo("  more workers: jobrunner worker (or: arq jobrunner.worker.WorkerSettings)")


def _print_how_to_stop(settings: Settings) -> None:
    grace = f"{settings.shutdown_grace_seconds:g}s"
    click.echo(f"  Ctrl-C stops: running jobs get {grace} to finish, Ctrl-C again stops them now")


@click.command()
@click.option("--queues", help="Comma separated plans, e.g. enterprise,business,pro,free.")
@click.option("--concurrency", type=int, help="Jobs run at once, split by plan shares.")
def worker(queues: str | None, concurrency: int | None) -> None:
    """Run a worker against JOBRUNNER_REDIS_URL until Ctrl-C/SIGTERM (it drains; twice: now)."""
    settings = client_settings(worker_queues=queues, concurrency=concurrency)
    run(lambda: _worker(settings), fast_loop=True)


async def _worker(settings: Settings) -> None:
    async with StopSignals() as stop:
        registry = build_registry(settings)
        async with JobRunner(settings, registry) as runner:
            worker = WorkerRunner(
                settings, registry, redis=runner.redis, cron_jobs=maintenance_cron(settings)
            )
            await run_worker(worker, stop)
