"""Child processes for pipeline work, owned by whoever creates the pool and closes it.

Each child runs one call at a time (see child.py), so one job's child can be stopped or
killed without touching any other job. Children start on demand, up to ``size`` at once,
and are kept between jobs; a child that died, was killed or met its memory cap is not
reused: the next job that needs one starts a fresh one.

Messages are JSON (wire.py). A child runs only functions of jobrunner's pipeline modules
(``wire.PIPELINE_MODULES``) and of the modules the pool is created with (``allow``: tests
send their own functions).

The start method is forkserver (spawn where there is none), never fork: the worker runs an
event loop and threads, and a forked child could inherit a lock some thread held then.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import socket
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import structlog

from jobrunner.errors import TransientError
from jobrunner.tasks.child import STOP, Call, child_main
from jobrunner.tasks.wire import HEADER, PIPELINE_MODULES, dumps, loads

__all__ = ["Child", "ChildLost", "ProcessPool"]

log = structlog.get_logger("jobrunner.pool")
START_TIMEOUT = 60.0  # a child imports polars and pdfium before it says it is ready
CLOSE_WAIT = 5.0  # seconds an idle child gets to exit when told to, before it is killed


class ChildLost(Exception):
    """The child's connection ended in the middle of a call: it died."""


class Child:
    """The parent's handle on one child process."""

    def __init__(
        self,
        process: Any,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        stderr_path: Path,
    ) -> None:
        self.process = process
        self.reader, self.writer = reader, writer
        self.stderr_path = stderr_path
        self.usable = True  # False once it died, was killed or retired itself
        self.killed = False  # by us (a stop that was not honoured in time)

    @property
    def pid(self) -> int:
        return int(self.process.pid)

    async def call(self, call: Call, on_progress: Callable[[float, str | None], None]) -> Any:
        """Send ``call``; relay its progress; return its reply (ChildLost if it dies)."""
        try:
            self.writer.write(dumps(call.message()))
            await self.writer.drain()
            while True:
                reply = await _read(self.reader)
                if reply[0] != "progress":
                    if reply[0] == "memory":
                        self.usable = False  # it exits after this reply
                    return reply
                on_progress(reply[1], reply[2])
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            self.usable = False
            raise ChildLost(f"pipeline process {self.pid} died") from exc

    def stop(self) -> None:
        """Ask the running call to stop at its next progress report."""
        if not self.writer.is_closing():
            self.writer.write(dumps(STOP))

    def kill(self) -> None:
        self.usable, self.killed = False, True
        if self.process.is_alive():
            self.process.kill()

    async def exit_code(self, timeout: float = CLOSE_WAIT) -> int | None:
        """The exit code once the process has ended (negative: the signal that ended it)."""
        await asyncio.to_thread(self.process.join, timeout)
        code = self.process.exitcode
        return None if code is None else int(code)

    def stderr_tail(self, size: int = 4096) -> str:
        try:
            with self.stderr_path.open("rb") as f:
                f.seek(max(0, self.stderr_path.stat().st_size - size))
                return f.read().decode("utf-8", errors="replace")
        except OSError:
            return ""

    async def close(self) -> None:
        """End the process: asked first, killed if it does not go within CLOSE_WAIT."""
        if self.usable and not self.writer.is_closing():
            self.writer.write(dumps(None))
        if await self.exit_code(CLOSE_WAIT) is None:
            self.kill()
            await self.exit_code(CLOSE_WAIT)
        self.usable = False
        self.writer.close()
        with contextlib.suppress(ValueError):  # still running after a kill: left to the OS
            self.process.close()


async def _read(reader: asyncio.StreamReader) -> Any:
    (size,) = HEADER.unpack(await reader.readexactly(HEADER.size))
    return loads(await reader.readexactly(size))


class ProcessPool:
    """Up to ``size`` child processes; ``acquire`` one for a job, ``release`` it after."""

    def __init__(self, size: int, *, name: str = "pipeline", allow: tuple[str, ...] = ()) -> None:
        if size < 1:
            raise ValueError("a pool needs at least one process")
        self.size = size
        self.name = name
        self.allowed = (*PIPELINE_MODULES, *allow)  # modules whose functions children run
        self.started = 0  # children started so far (for tests and logs)
        self._idle: list[Child] = []
        self._busy: set[Child] = set()
        self._closing: set[asyncio.Task[None]] = set()  # children being ended in the background
        self._slots = asyncio.Semaphore(size)
        self._closed = False
        self._stderr_dir: tempfile.TemporaryDirectory[str] | None = None
        methods = multiprocessing.get_all_start_methods()
        self._context: Any = multiprocessing.get_context(
            "forkserver" if "forkserver" in methods else "spawn"
        )

    @property
    def pids(self) -> list[int]:
        """Live children, idle or busy."""
        return [c.pid for c in [*self._idle, *self._busy] if c.process.is_alive()]

    async def acquire(self, *, wait: bool = True) -> Child | None:
        """A child for one job (started if none is idle); None when ``wait`` is False and
        all ``size`` are busy. TransientError ``pipeline_start_failed`` if one cannot start."""
        if self._closed:
            raise TransientError("the worker is stopping", code="worker_stopping")
        if not wait and self._slots.locked():
            return None
        await self._slots.acquire()
        try:
            child = self._idle_child() or await self._start()
        except BaseException:
            self._slots.release()
            raise
        self._busy.add(child)
        return child

    def _idle_child(self) -> Child | None:
        """An idle child still alive (one may have been killed from outside meanwhile)."""
        while self._idle:
            child = self._idle.pop()
            if child.process.is_alive():
                return child
            child.usable = False
            self._end_later(child)
        return None

    def release(self, child: Child) -> None:
        """Give ``child`` back: kept if it can take another job, else ended."""
        self._busy.discard(child)
        self._slots.release()
        if child.usable and not self._closed:
            self._idle.append(child)
        else:
            self._end_later(child)

    def _end_later(self, child: Child) -> None:
        task = asyncio.get_running_loop().create_task(child.close())
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def close(self) -> None:
        """End every child (busy ones are killed: the jobs using them have gone by now)."""
        self._closed = True
        idle, self._idle = self._idle, []
        for child in self._busy:
            child.kill()
        ending = [c.close() for c in [*idle, *self._busy]]
        await asyncio.gather(*ending, *self._closing, return_exceptions=True)
        if self._stderr_dir is not None:
            self._stderr_dir.cleanup()
            self._stderr_dir = None

    async def _start(self) -> Child:
        if self._stderr_dir is None:
            self._stderr_dir = tempfile.TemporaryDirectory(prefix=f"jobrunner-{self.name}-")
        self.started += 1
        stderr_path = Path(self._stderr_dir.name) / f"child-{self.started}.stderr"
        ours, theirs = socket.socketpair()
        process = self._context.Process(
            target=child_main,
            args=(theirs, str(stderr_path), self.allowed),
            name=f"jobrunner-{self.name}-{self.started}",
            daemon=True,
        )
        starting = asyncio.ensure_future(asyncio.to_thread(process.start))
        try:
            await asyncio.shield(starting)
        finally:
            if not starting.done():  # cancelled meanwhile: let it start, then end it
                await asyncio.wait({starting})
            theirs.close()
        reader, writer = await asyncio.open_unix_connection(sock=ours)
        child = Child(process, reader, writer, stderr_path)
        try:
            async with asyncio.timeout(START_TIMEOUT):
                await _read(reader)  # ["ready", pid]
        except BaseException as exc:
            child.kill()
            self._end_later(child)
            if isinstance(exc, asyncio.CancelledError):
                raise
            tail = child.stderr_tail()
            log.error("pipeline process failed to start", error=str(exc), stderr=tail)
            raise TransientError(
                "a pipeline process failed to start", code="pipeline_start_failed"
            ) from exc
        return child
