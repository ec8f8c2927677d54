"""The embedded redis-server: private, persistent (AOF), stopped on exit."""

from __future__ import annotations

import socket
from pathlib import Path
from urllib.parse import urlparse

import pytest

from jobrunner.domain.status import JobStatus
from jobrunner.embedded import embedded_redis
from jobrunner.runtime import JobRunner
from jobrunner.tasks.catalog import build_registry
from jobrunner.worker.runner import WorkerRunner
from tests.conftest import make_settings


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
