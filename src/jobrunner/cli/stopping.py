"""Stopping the long-running commands as a terminal does it: the first SIGINT (Ctrl-C) or SIGTERM
stops intake and lets running jobs finish for the grace period; a second one stops them at once
(they go back to the queue and run again). Handlers are installed before anything starts, so a
Ctrl-C during start-up is a clean stop too."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from types import TracebackType

import click

from jobrunner.worker.runner import WorkerRunner

_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopSignals:
    """``async with StopSignals() as stop``: ``stop.requested`` is set at the first signal."""

    def __init__(self) -> None:
        self.requested = asyncio.Event()
        self.count = 0
        self._listener: Callable[[int], None] | None = None

    def listen(self, listener: Callable[[int], None]) -> None:
        """Call ``listener(count)`` at each signal from now on."""
        self._listener = listener

    async def __aenter__(self) -> StopSignals:
        loop = asyncio.get_running_loop()
        for sig in _SIGNALS:
            loop.add_signal_handler(sig, self._received)
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        loop = asyncio.get_running_loop()
        for sig in _SIGNALS:
            loop.remove_signal_handler(sig)

    def _received(self) -> None:
        self.count += 1
        self.requested.set()
        if self._listener is not None:
            self._listener(self.count)


async def run_worker(worker: WorkerRunner, stop: StopSignals) -> None:
    """Run ``worker`` until a stop signal, then drain it (a second signal cuts the drain)."""
    grace = worker.settings.shutdown_grace_seconds

    def on_signal(count: int) -> None:
        running = len(worker.running_job_ids)
        if count == 1 and running:
            click.echo(
                f"stopping: {running} running job(s) get up to {grace:g}s to finish "
                "(Ctrl-C again stops them now; they run again later)",
                err=True,
            )
        elif count == 1:
            click.echo("stopping", err=True)
        else:
            click.echo("stopping now: running jobs go back to the queue", err=True)
        worker.request_stop()

    stop.listen(on_signal)
    await worker.start()
    try:
        await stop.requested.wait()
    finally:
        await worker.stop()
