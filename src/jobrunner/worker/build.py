"""Settings for the plain ``arq`` command, built on first access (no environment read at import).

``arq jobrunner.worker.WorkerSettings`` runs arq's own Worker on the maintenance queue (cron);
its start-up hook starts a ``WorkerRunner`` in the same event loop for the plan queues, and its
shutdown hook stops that runner gracefully.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from datetime import UTC
from typing import Any

from jobrunner.errors import ConfigError
from jobrunner.logs import configure_logging
from jobrunner.serializer import deserialize, serialize
from jobrunner.settings import Settings
from jobrunner.store.connection import create_redis
from jobrunner.store.keys import Keys
from jobrunner.tasks.catalog import build_registry
from jobrunner.tasks.maintenance import maintenance_cron
from jobrunner.worker.runner import WorkerRunner


def arq_worker_settings(settings: Settings) -> dict[str, Any]:
    if settings.redis_url is None:
        raise ConfigError(
            "set JOBRUNNER_REDIS_URL for the arq command (the embedded Redis is for 'jobrunner up')"
        )
    registry = build_registry(settings)
    keys = Keys(settings.key_prefix)
    redis = create_redis(
        settings.redis_url,
        timeout=settings.redis_timeout_seconds,
        default_queue=keys.queue(settings.default_plan),
    )

    async def on_startup(ctx: dict[str, Any]) -> None:
        # the arq command gave the "arq" logger a handler of its own: every line would show twice
        configure_logging(json=settings.log_json, level=settings.log_level, take_over=["arq"])
        runner = WorkerRunner(settings, registry, redis=redis)
        ctx["runner"] = runner
        ctx["services"] = runner.services
        await runner.start()
        _stop_on_signals(runner, asyncio.current_task())

    async def on_shutdown(ctx: dict[str, Any]) -> None:
        runner: WorkerRunner | None = ctx.get("runner")
        if runner is not None:
            await runner.stop()

    return {
        "functions": [],
        "cron_jobs": maintenance_cron(settings),
        "timezone": UTC,  # the schedules are UTC
        "queue_name": keys.maintenance_queue,
        "redis_pool": redis,
        "on_startup": on_startup,
        "on_shutdown": on_shutdown,
        "job_serializer": serialize,
        "job_deserializer": deserialize,
        "keep_result": 0,
        "max_jobs": 2,
    }


def _stop_on_signals(runner: WorkerRunner, arq_main: asyncio.Task[Any] | None) -> None:
    """SIGTERM/SIGINT under the arq command: the runner drains (a second signal: at once) and
    arq's main task is cancelled until it ends, which runs arq's close and our on_shutdown.

    arq's own handler cancels its main task once; seen losing that one cancellation about one
    time in ten (the worker then ran on after SIGTERM), so ours repeats it until the task ends.
    """
    loop = asyncio.get_running_loop()
    stoppers: set[asyncio.Task[None]] = set()

    def on_signal() -> None:
        runner.request_stop()
        if arq_main is not None and not arq_main.done():
            stopper = loop.create_task(_cancel_until_done(arq_main))
            stoppers.add(stopper)
            stopper.add_done_callback(stoppers.discard)

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal)


async def _cancel_until_done(task: asyncio.Task[Any]) -> None:
    while not task.done():
        task.cancel()
        with contextlib.suppress(TimeoutError, asyncio.CancelledError):
            async with asyncio.timeout(0.2):
                await asyncio.shield(task)
