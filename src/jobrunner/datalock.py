"""One owner per data dir: ``lock = await DataDirLock.acquire(data_dir)``, ``await lock.release()``.

The owner holds an exclusive ``flock`` on ``<data_dir>/jobrunner.lock``. The kernel drops it
when the owner exits, however it exits, so a lock left by a dead process is simply taken over
(``previous`` is what that process left). The same file holds a JSON record of the owner (pid,
command, Redis URL, ...): what a second comer's error names, and what ``jobrunner env`` reads.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from jobrunner.errors import ConfigError, DataDirInUseError

T = TypeVar("T")

LOCK_FILE = "jobrunner.lock"
_TRIES = 10  # a reader (`jobrunner env`) holds a shared lock for an instant; so may a starter
_PAUSE = 0.03


@dataclass(frozen=True)
class Owner:
    """The record in a data dir's lock file, and whether its writer still holds the lock."""

    record: dict[str, Any]
    running: bool

    @property
    def pid(self) -> int | None:
        pid = self.record.get("pid")
        return pid if isinstance(pid, int) else None

    @property
    def redis_url(self) -> str | None:
        url = self.record.get("redis_url")
        return url if isinstance(url, str) else None

    def describe(self) -> str:
        command = self.record.get("command") or "a jobrunner process"
        url = self.redis_url or "Redis still starting"
        return f"pid {self.pid} ({command}; {url})"


class DataDirLock:
    """Held for as long as one process owns a data dir (its embedded Redis and its port)."""

    def __init__(self, path: Path, fd: int, previous: dict[str, Any]) -> None:
        self.path = path
        self.previous = previous
        self.record: dict[str, Any] = {}
        self._fd: int | None = fd

    @classmethod
    async def acquire(cls, data_dir: Path) -> DataDirLock:
        """Take the lock, or raise DataDirInUseError naming the process that holds it."""
        path = await asyncio.to_thread(lambda: data_dir.resolve() / LOCK_FILE)
        for _ in range(_TRIES):
            taken = await asyncio.to_thread(_unless_os_error, _try_lock, path)
            if taken is not None:
                lock = cls(path, *taken)
                await lock.update(
                    pid=os.getpid(),
                    command=_command(),
                    data_dir=str(path.parent),
                    started_at=_now(),
                )
                return lock
            await asyncio.sleep(_PAUSE)
        raise _in_use(path.parent, await read_owner(path.parent))

    async def update(self, **fields: Any) -> None:
        """Add ``fields`` to the owner record (a reader that catches it half-written retries)."""
        if self._fd is None:
            raise RuntimeError("the data dir lock was released")
        self.record.update(fields)
        await asyncio.to_thread(_write, self._fd, self.record)

    async def release(self) -> None:
        """Let go. The record stays (marked stopped) for `jobrunner env`; a record without
        ``stopped_at`` tells the next owner that this one died."""
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            await self.update(stopped_at=_now())
        fd, self._fd = self._fd, None
        await asyncio.to_thread(os.close, fd)


async def ensure_free(data_dir: Path) -> None:
    """DataDirInUseError if a running process owns ``data_dir`` (a check; nothing is taken)."""
    where = await asyncio.to_thread(data_dir.resolve)
    owner = await read_owner(where)
    if owner is not None and owner.running:
        raise _in_use(where, owner)


def _in_use(data_dir: Path, owner: Owner | None) -> DataDirInUseError:
    holder = owner.describe() if owner else "another process"
    return DataDirInUseError(
        f"data dir {data_dir} is in use by {holder}; stop that one first, or give this one "
        "its own --data-dir (JOBRUNNER_DATA_DIR)",
        pid=owner.pid if owner else None,
        redis_url=owner.redis_url if owner else None,
    )


async def read_owner(data_dir: Path) -> Owner | None:
    """The data dir's owner record (None if no owner ever ran there)."""
    path = data_dir / LOCK_FILE
    owner = await asyncio.to_thread(_unless_os_error, _read_owner, path)
    for _ in range(_TRIES):  # an owner writing its record at this instant: read again
        if owner is None or owner.pid is not None or not owner.running:
            break
        await asyncio.sleep(_PAUSE)
        owner = await asyncio.to_thread(_unless_os_error, _read_owner, path)
    return owner


def _unless_os_error(step: Callable[[Path], T], path: Path) -> T:
    """``step(path)``; a data dir we may not create or read is a configuration problem."""
    try:
        return step(path)
    except OSError as exc:
        raise ConfigError(f"cannot use {path}: {exc.strerror or exc}", path=str(path)) from exc


def _now() -> str:
    return datetime.now(tz=UTC).isoformat(timespec="seconds")


def _command() -> str:
    argv = [Path(sys.argv[0]).name, *sys.argv[1:]] if sys.argv and sys.argv[0] else ["python"]
    return " ".join(argv)[:200]


def _try_lock(path: Path) -> tuple[int, dict[str, Any]] | None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # 0600: an external Redis URL in the record may carry a password; not inherited by children
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd, _read(fd)


def _read_owner(path: Path) -> Owner | None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            running = True
        else:
            running = False
            fcntl.flock(fd, fcntl.LOCK_UN)
        return Owner(_read(fd), running)
    finally:
        os.close(fd)


def _read(fd: int) -> dict[str, Any]:
    size = os.fstat(fd).st_size
    raw = os.pread(fd, size, 0) if size else b""
    with contextlib.suppress(ValueError):
        record = json.loads(raw)
        if isinstance(record, dict):
            return record
    return {}


def _write(fd: int, record: dict[str, Any]) -> None:
    data = json.dumps(record, indent=2).encode() + b"\n"
    os.ftruncate(fd, 0)
    os.pwrite(fd, data, 0)
