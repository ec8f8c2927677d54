"""The embedded redis-server: private, persistent (AOF), stopped on exit, one owner per data
dir, the same port across restarts."""

from __future__ import annotations

import asyncio
import json
import re
import socket
from pathlib import Path
from urllib.parse import urlparse

import pytest

from jobrunner.datalock import LOCK_FILE
from jobrunner.domain.status import JobStatus
from jobrunner.embedded import PORT_FILE, embedded_redis, find_redis_server, free_port, server_args
from jobrunner.errors import ConfigError, DataDirInUseError
from jobrunner.runtime import JobRunner
from jobrunner.tasks.catalog import build_registry
from jobrunner.worker.runner import WorkerRunner
from tests.conftest import make_settings, wait_for_port


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


async def test_embedded_redis_persists_under_the_data_dir_and_stops(tmp_path: Path) -> None:
    async with embedded_redis(tmp_path) as url:
        port = urlparse(url).port
        assert port is not None and port_open(port)
        assert urlparse(url).hostname == "127.0.0.1"
    assert not port_open(port)
    aof = list((tmp_path / "redis").glob("appendonly*"))
    assert aof, "append-only file expected under the data dir"


async def test_runner_without_a_url_runs_jobs_on_embedded_redis_and_keeps_them(
    tmp_path: Path,
) -> None:
    settings = make_settings(None, "embedded", tmp_path)
    registry = build_registry(settings)
    async with (
        JobRunner(settings, registry) as jr,
        WorkerRunner(settings, registry, redis=jr.redis),
    ):
        assert jr.redis_url.startswith("redis://127.0.0.1:")
        job = await jr.enqueue("demo.echo", {"kept": True})
        assert (await jr.wait(job.id, timeout=10)).status is JobStatus.SUCCEEDED
    async with JobRunner(settings, registry) as again:  # a new server on the same data dir
        assert (await again.get(job.id)).status is JobStatus.SUCCEEDED
        assert await again.result(job.id) == {"kept": True}


async def test_a_relative_data_dir_works(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # `jobrunner up` defaults to ./.jobrunner
    async with embedded_redis(Path(".jobrunner")) as url:
        assert url.startswith("redis://127.0.0.1:")
    assert (tmp_path / ".jobrunner" / "redis" / "redis.log").exists()


async def test_the_port_is_kept_across_restarts_and_a_second_owner_is_refused(
    tmp_path: Path,
) -> None:
    async with embedded_redis(tmp_path) as first:
        with pytest.raises(DataDirInUseError, match=re.escape(first)):
            async with embedded_redis(tmp_path):
                pass  # pragma: no cover - refused before this
    async with embedded_redis(tmp_path) as again:
        assert again == first
    assert (tmp_path / "redis" / PORT_FILE).read_text().strip() == str(urlparse(first).port)


async def test_a_taken_port_gets_a_new_one_unless_pinned(tmp_path: Path) -> None:
    async with embedded_redis(tmp_path) as first:
        port = urlparse(first).port
    assert port is not None
    with socket.socket() as squatter:  # something else listens on the kept port now
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        async with embedded_redis(tmp_path) as moved:
            assert moved != first and port_open(urlparse(moved).port or 0)
        with pytest.raises(ConfigError, match=f"port {port} asked for the embedded Redis"):
            async with embedded_redis(tmp_path, port=port):
                pass  # pragma: no cover - refused before this
    kept = int((tmp_path / "redis" / PORT_FILE).read_text())
    assert kept == urlparse(moved).port
    pinned = free_port()
    async with embedded_redis(tmp_path, port=pinned) as url:
        assert url == f"redis://127.0.0.1:{pinned}/0"


async def test_a_redis_server_left_by_a_dead_owner_is_stopped(tmp_path: Path) -> None:
    """An owner killed outright on a system without PR_SET_PDEATHSIG leaves its Redis up."""
    port = free_port()
    directory = tmp_path / "redis"
    directory.mkdir()
    orphan = await asyncio.create_subprocess_exec(
        find_redis_server(), *server_args(directory, port), start_new_session=True
    )
    try:
        await asyncio.to_thread(wait_for_port, port)
        (directory / PORT_FILE).write_text(str(port))
        lock_file = tmp_path / LOCK_FILE
        record = {
            "pid": 2**22 + 1,
            "redis_pid": orphan.pid,
            "redis_url": f"redis://127.0.0.1:{port}/0",
        }
        lock_file.write_text(json.dumps(record))
        async with embedded_redis(tmp_path) as url:
            assert await asyncio.wait_for(orphan.wait(), 10) == 0  # stopped by SIGTERM, cleanly
            assert url == f"redis://127.0.0.1:{port}/0"  # and its port reused
    finally:
        if orphan.returncode is None:
            orphan.kill()
            await orphan.wait()
