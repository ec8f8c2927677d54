"""uvicorn inside a process that owns its signals (``jobrunner up``: the worker's SIGTERM and
SIGINT handlers end both the worker and the API)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterator
from typing import Literal

import uvicorn
from starlette.types import ASGIApp

from jobrunner.errors import ConfigError

__all__ = ["EmbeddedServer", "bind", "embedded_server", "serve_until_cancelled"]


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


def bind(host: str, port: int) -> socket.socket:
    """A listening socket, or ConfigError (uvicorn would exit the whole process instead)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host, port), family=family, backlog=2048)
    except OSError as exc:
        raise ConfigError(f"the HTTP API cannot listen on {host}:{port}: {exc.strerror}") from exc


async def serve_until_cancelled(
    server: EmbeddedServer, sockets: list[socket.socket] | None = None
) -> None:
    """Serve; when cancelled, stop accepting, finish what is in flight, then re-raise."""
    task = asyncio.ensure_future(server.serve(sockets))
    try:
        await asyncio.shield(task)
    except asyncio.CancelledError:
        server.should_exit = True
        await task
        raise
