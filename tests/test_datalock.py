"""One owner per data dir (datalock.py): refused while held, taken over once its owner is gone."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import textwrap
from pathlib import Path

import pytest

from jobrunner.datalock import LOCK_FILE, DataDirLock, read_owner
from jobrunner.errors import ConfigError, DataDirInUseError

HOLDER = textwrap.dedent(
    """
    import asyncio, sys
    from pathlib import Path
    from jobrunner.datalock import DataDirLock

    async def main():
        lock = await DataDirLock.acquire(Path(sys.argv[1]))
        await lock.update(redis_url="redis://127.0.0.1:1234/0")
        print("held", flush=True)
        await asyncio.sleep(60)

    asyncio.run(main())
    """
)


async def test_a_second_owner_is_refused_until_the_first_releases(tmp_path: Path) -> None:
    first = await DataDirLock.acquire(tmp_path / "data")
    await first.update(redis_url="redis://127.0.0.1:6390/0")
    with pytest.raises(DataDirInUseError) as refused:
        await DataDirLock.acquire(tmp_path / "data")
    message = refused.value.message
    assert f"is in use by pid {os.getpid()}" in message and "redis://127.0.0.1:6390/0" in message
    assert refused.value.details == {"pid": os.getpid(), "redis_url": "redis://127.0.0.1:6390/0"}
    owner = await read_owner(tmp_path / "data")
    assert owner is not None and owner.running and owner.pid == os.getpid()
    await first.release()
    owner = await read_owner(tmp_path / "data")
    assert owner is not None and not owner.running and owner.record["stopped_at"]
    second = await DataDirLock.acquire(tmp_path / "data")
    assert second.previous["pid"] == os.getpid() and second.previous["stopped_at"]
    assert "stopped_at" not in second.record
    await second.release()
    assert (tmp_path / "data" / LOCK_FILE).stat().st_mode & 0o777 == 0o600


async def test_the_lock_of_a_killed_owner_is_taken_over(tmp_path: Path) -> None:
    holder = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        HOLDER,
        str(tmp_path),
        stdout=asyncio.subprocess.PIPE,
        start_new_session=True,
    )
    try:
        assert holder.stdout is not None
        assert await asyncio.wait_for(holder.stdout.readline(), 30) == b"held\n"
        with pytest.raises(DataDirInUseError, match=f"pid {holder.pid} "):
            await DataDirLock.acquire(tmp_path)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(holder.pid, signal.SIGKILL)
        await holder.wait()
    lock = await DataDirLock.acquire(tmp_path)  # the kernel dropped the dead owner's lock
    try:
        assert lock.previous["pid"] == holder.pid
        assert "stopped_at" not in lock.previous  # it did not stop cleanly
        assert lock.record["pid"] == os.getpid()
    finally:
        await lock.release()


async def test_no_owner_yet(tmp_path: Path) -> None:
    assert await read_owner(tmp_path) is None


async def test_a_data_dir_that_cannot_be_made_is_a_config_error(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the data dir should be")
    with pytest.raises(ConfigError, match=r"cannot use .*not-a-dir"):
        await DataDirLock.acquire(blocker)
