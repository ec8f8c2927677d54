"""Shared fixtures: one throwaway redis-server per session, a fresh key prefix per test.

``JOBRUNNER_TEST_REDIS_URL`` may point at another Redis; nothing here ever flushes a database,
only the keys under the test's own prefix.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis as sync_redis

from jobrunner.embedded import find_redis_server, free_port, server_args
from jobrunner.registry import Registry
from jobrunner.runtime import JobRunner
from jobrunner.settings import Settings
from jobrunner.tasks.catalog import build_registry
from jobrunner.worker.runner import WorkerRunner
from tests.s3_server import S3Server, run_s3_server

pytest_plugins = ["tests.clitools"]  # fixtures for tests of the `jobrunner` command


def wait_for_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"nothing listening on {port}")


def start_redis(directory: Path, port: int, *, persist: bool) -> subprocess.Popen[bytes]:
    directory.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen([find_redis_server(), *server_args(directory, port, persist=persist)])
    wait_for_port(port)
    return proc


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    external = os.environ.get("JOBRUNNER_TEST_REDIS_URL")
    if external:
        yield external
        return
    port = free_port()
    proc = start_redis(tmp_path_factory.mktemp("redis"), port, persist=False)
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture
def key_prefix(redis_url: str) -> Iterator[str]:
    prefix = f"test-{uuid.uuid4().hex[:12]}"
    yield prefix
    client = sync_redis.Redis.from_url(redis_url)
    try:
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


def make_settings(
    redis_url: str | None, key_prefix: str, data_dir: Path, **overrides: object
) -> Settings:
    values: dict[str, object] = {
        "redis_url": redis_url,
        "key_prefix": key_prefix,
        "data_dir": data_dir,
        "demo_tasks": True,
        "retry_base_seconds": 0.05,
        "retry_cap_seconds": 0.2,
        "lease_seconds": 3.0,
        "heartbeat_seconds": 0.5,
        "shutdown_grace_seconds": 2.0,
        "progress_interval_seconds": 0.05,
        "concurrency": 10,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[arg-type]


@pytest.fixture
def settings(redis_url: str, key_prefix: str, tmp_path: Path) -> Settings:
    return make_settings(redis_url, key_prefix, tmp_path)


@pytest.fixture
def registry(settings: Settings) -> Registry:
    return build_registry(settings)


@pytest.fixture
async def runner(settings: Settings, registry: Registry) -> AsyncIterator[JobRunner]:
    async with JobRunner(settings, registry) as jr:
        yield jr


@pytest.fixture
async def worker(
    settings: Settings, registry: Registry, runner: JobRunner
) -> AsyncIterator[WorkerRunner]:
    w = WorkerRunner(settings, registry, redis=runner.redis)
    await w.start()
    yield w
    await w.stop(grace=0)


@pytest.fixture
def spawn(runner: JobRunner) -> Iterator[list[subprocess.Popen[bytes]]]:
    """Processes a test starts; killed (if still up) before its runner's Redis data goes."""
    procs: list[subprocess.Popen[bytes]] = []
    yield procs
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """A local S3-compatible server (moto's emulator, see tests/s3_server.py) with one bucket."""
    yield from run_s3_server(tmp_path_factory.mktemp("s3"))


@pytest.fixture
def stoppable_redis(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A redis-server of this test's own, to SIGSTOP (it then accepts connections but never
    answers) and SIGCONT; never the session's."""
    port = free_port()
    proc = start_redis(tmp_path / "stoppable-redis", port, persist=False)
    try:
        yield f"redis://127.0.0.1:{port}/0", proc
    finally:
        proc.send_signal(signal.SIGCONT)
        proc.terminate()
        proc.wait(10)
