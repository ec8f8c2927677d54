"""The local cache behind S3BlobStore.local_path: reuse, atomic writes, bounded size, eviction.

Ages are set on the files (os.utime), as another process or the passing of time would leave
them; nothing here mocks the clock.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from jobrunner.store.blob_cache import BlobCache


class Source:
    """Stands for the remote store: writes a blob's bytes into the temp file it is given."""

    def __init__(self) -> None:
        self.fetched: list[str] = []

    def fetcher(
        self, blob_id: str, data: bytes, fail: bool = False
    ) -> Callable[[Path], Awaitable[None]]:
        async def fetch(dest: Path) -> None:
            self.fetched.append(blob_id)
            await asyncio.to_thread(dest.write_bytes, data[: len(data) // 2])
            await asyncio.sleep(0)  # let another coroutine look meanwhile
            if fail:
                raise ConnectionResetError("the store went away mid-download")
            await asyncio.to_thread(dest.write_bytes, data)

        return fetch


def _age(path: Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


async def _get(cache: BlobCache, source: Source, blob_id: str, data: bytes) -> Path:
    return await cache.get(blob_id, "in.csv", len(data), source.fetcher(blob_id, data))


async def test_a_copy_is_fetched_once_and_reused(tmp_path: Path) -> None:
    cache, source = BlobCache(tmp_path, max_bytes=1 << 20, keep_seconds=60), Source()
    paths = await asyncio.gather(*(_get(cache, source, "a" * 32, b"abc") for _ in range(4)))
    assert set(paths) == {tmp_path / ("a" * 32) / "in.csv"}
    assert source.fetched == ["a" * 32]
    assert paths[0].read_bytes() == b"abc"
    _age(paths[0], 100)
    await _get(cache, source, "a" * 32, b"abc")
    assert time.time() - paths[0].stat().st_mtime < 5  # a hand-out marks it used
    assert source.fetched == ["a" * 32]


async def test_a_failed_download_leaves_nothing(tmp_path: Path) -> None:
    cache, source = BlobCache(tmp_path, max_bytes=1 << 20, keep_seconds=60), Source()
    with pytest.raises(ConnectionResetError):
        await cache.get("b" * 32, "in.csv", 4, source.fetcher("b" * 32, b"data", fail=True))
    assert list((tmp_path / ("b" * 32)).iterdir()) == []
    path = await _get(cache, source, "b" * 32, b"data")  # and the next try starts afresh
    assert path.read_bytes() == b"data"


async def test_a_copy_of_the_wrong_size_is_fetched_again(tmp_path: Path) -> None:
    cache, source = BlobCache(tmp_path, max_bytes=1 << 20, keep_seconds=60), Source()
    path = await _get(cache, source, "c" * 32, b"12345")
    path.write_bytes(b"12")  # truncated by something outside our control
    assert (await _get(cache, source, "c" * 32, b"12345")).read_bytes() == b"12345"
    assert source.fetched == ["c" * 32, "c" * 32]


async def test_least_recently_used_copies_go_first_past_the_bound(tmp_path: Path) -> None:
    cache, source = BlobCache(tmp_path, max_bytes=2500, keep_seconds=60), Source()
    first = await _get(cache, source, "1" * 32, b"x" * 1000)
    second = await _get(cache, source, "2" * 32, b"x" * 1000)
    _age(first, 300)
    _age(second, 200)
    await _get(cache, source, "1" * 32, b"x" * 1000)  # used again: now the newest
    third = await _get(cache, source, "3" * 32, b"x" * 1000)  # 3000 > 2500: one must go
    assert first.exists() and third.exists()
    assert not second.exists() and not second.parent.exists()


async def test_copies_used_recently_are_kept_even_past_the_bound(tmp_path: Path) -> None:
    cache, source = BlobCache(tmp_path, max_bytes=10, keep_seconds=3600), Source()
    paths = [await _get(cache, source, str(i) * 32, b"y" * 100) for i in range(3)]
    assert all(p.exists() for p in paths)  # each may still be read by a running job
    _age(paths[0], 7200)
    assert cache.evict() == [paths[0]]
    assert [p.exists() for p in paths] == [False, True, True]


async def test_the_copy_just_fetched_is_never_evicted(tmp_path: Path) -> None:
    cache, source = BlobCache(tmp_path, max_bytes=0, keep_seconds=0), Source()
    path = await _get(cache, source, "d" * 32, b"big")
    assert path.read_bytes() == b"big"


async def test_leftovers_of_crashed_downloads_are_removed(tmp_path: Path) -> None:
    cache = BlobCache(tmp_path, max_bytes=1 << 20, keep_seconds=60)
    folder = tmp_path / ("e" * 32)
    folder.mkdir()
    stale, live = folder / ".in.csv.1.part", folder / ".in.csv.2.part"
    stale.write_bytes(b"half")
    live.write_bytes(b"half")
    _age(stale, 2 * 3600)
    assert cache.evict() == [stale]
    assert live.exists()


async def test_forget_drops_a_blobs_copy(tmp_path: Path) -> None:
    cache, source = BlobCache(tmp_path, max_bytes=1 << 20, keep_seconds=60), Source()
    path = await _get(cache, source, "f" * 32, b"z")
    await cache.forget("f" * 32)
    assert not path.parent.exists()
    await cache.forget("f" * 32)  # twice is fine
