"""A bounded local cache of remote blobs, so pipelines that need a file get one (``local_path``).

Copies live under ``<root>/<id>/<name>`` (the file store's layout). A download goes to a hidden
temp file in the same folder and is renamed into place, so no reader ever sees half a file.
Blobs never change once written (every write gets a new id), so a cached copy stays valid for
as long as the blob exists; the remote store checks that before each hand-out.

Lifetime, explicitly:
- every hand-out touches the copy (its mtime is the "last used" time);
- after each download, copies are removed least recently used first while the cache holds more
  than ``max_bytes``, except any handed out within the last ``keep_seconds`` (a job may still
  be reading it, or about to reopen it): the bound is soft for copies in use;
- temp files untouched for an hour (or ``keep_seconds`` if longer) are leftovers of a crashed
  download and are removed;
- ``forget`` (called by the store's ``delete``) removes this machine's copy at once; another
  machine's copy is removed at its next ``local_path`` of that ref (the blob is gone) or by
  eviction.
Several processes may share one cache folder: renames are atomic and eviction only removes
copies nobody used for ``keep_seconds``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import time
import uuid
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

_PART = ".part"
_STALE_PART_SECONDS = 3600.0  # a download that wrote nothing for this long is dead


@dataclass(frozen=True)
class _Entry:
    path: Path
    size: int
    used: float  # mtime: when it was last handed out (or written)


class BlobCache:
    """Local copies of remote blobs, bounded by size (see the module docstring)."""

    def __init__(self, root: Path, *, max_bytes: int, keep_seconds: float) -> None:
        self.root = root
        self.max_bytes = max_bytes
        self.keep_seconds = keep_seconds
        # one download per ref at a time in this process; entries vanish with their last user
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    async def get(
        self, blob_id: str, name: str, size: int, fetch: Callable[[Path], Awaitable[None]]
    ) -> Path:
        """The local copy of blob ``blob_id/name`` (``size`` bytes), fetched with ``fetch(tmp)``
        into a temp file first when there is no good copy yet."""
        path = self.root / blob_id / name
        key = f"{blob_id}/{name}"
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = asyncio.Lock()
        async with lock:
            if await asyncio.to_thread(_reuse, path, size):
                return path
            await self._download(path, fetch)
        await asyncio.to_thread(self.evict, keep=path)
        return path

    async def _download(self, path: Path, fetch: Callable[[Path], Awaitable[None]]) -> None:
        await asyncio.to_thread(path.parent.mkdir, parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}{_PART}")
        try:
            await fetch(tmp)
            await asyncio.to_thread(os.replace, tmp, path)
        except BaseException:
            await asyncio.to_thread(tmp.unlink, missing_ok=True)
            raise

    async def forget(self, blob_id: str) -> None:
        """Drop this machine's copy of a blob (it was deleted)."""
        await asyncio.to_thread(shutil.rmtree, self.root / blob_id, True)

    def evict(self, keep: Path | None = None) -> list[Path]:
        """Remove least recently used copies until the cache fits ``max_bytes`` (never one used
        within ``keep_seconds``, nor ``keep``); returns what was removed. Runs in a thread."""
        now = time.time()
        copies, removed = [], []
        stale_part = max(self.keep_seconds, _STALE_PART_SECONDS)
        for entry in self._entries():
            if entry.path.name.endswith(_PART) and entry.path.name.startswith("."):
                if now - entry.used > stale_part:  # a crashed download's leftover
                    removed.append(entry.path)
                continue
            copies.append(entry)
        total = sum(entry.size for entry in copies)
        for entry in sorted(copies, key=lambda e: e.used):
            if total <= self.max_bytes or now - entry.used < self.keep_seconds:
                break
            if entry.path != keep:
                removed.append(entry.path)
                total -= entry.size
        for path in removed:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            with contextlib.suppress(OSError):  # not empty (another name, a download): keep it
                path.parent.rmdir()
        return removed

    def _entries(self) -> list[_Entry]:
        entries: list[_Entry] = []
        if not self.root.is_dir():
            return entries
        for folder in os.scandir(self.root):
            if not folder.is_dir(follow_symlinks=False):
                continue
            for item in os.scandir(folder.path):
                with contextlib.suppress(FileNotFoundError):
                    stat = item.stat(follow_symlinks=False)
                    entries.append(_Entry(Path(item.path), stat.st_size, stat.st_mtime))
        return entries


def _reuse(path: Path, size: int) -> bool:
    """Whether ``path`` is a good copy (marking it used); a copy of the wrong size is removed."""
    try:
        if path.stat().st_size != size:
            path.unlink(missing_ok=True)
            return False
        os.utime(path)  # last used: now (protects it from eviction for keep_seconds)
    except FileNotFoundError:  # never fetched, or evicted by another process just now
        return False
    return True
