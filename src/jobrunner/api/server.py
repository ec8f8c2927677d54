"""uvicorn inside a process that owns its signals (``jobrunner up``: the worker's SIGTERM and
SIGINT handlers end both the worker and the API)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from typing import Literal

import uvicorn
from starlette.types import ASGIApp

__all__ = ["EmbeddedServer", "embedded_server", "serve_until_cancelled"]


class EmbeddedServer(uvicorn.Server):
    """A uvicorn server that installs no signal handlers: its host stops it."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def embedded_server(
    app: ASGIApp, host: str, port: int, *, lifespan: Literal["on", "off"] = "on"
) -> EmbeddedServer:
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        lifespan=lifespan,
        log_config=None,  # our structlog set-up stays in charge
        access_log=False,  # the app writes its own access log
        timeout_graceful_shutdown=3,  # open event streams get this long, then are cut
    )
    return EmbeddedServer(config)


async def serve_until_cancelled(server: EmbeddedServer) -> None:
    """Serve; when cancelled, stop accepting, finish what is in flight, then re-raise."""
    task = asyncio.ensure_future(server.serve())
    try:
        await asyncio.shield(task)
    except asyncio.CancelledError:
        server.should_exit = True
        await task
        raise
