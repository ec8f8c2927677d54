"""Fixtures and helpers for tests of the `jobrunner` command (a pytest plugin, see conftest).

Quick commands run in-process through click's CliRunner against the session's Redis; workers
and `up` run as real processes, always stopped (and their process groups killed) at the end.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis as sync_redis
import structlog
from click.testing import CliRunner, Result

from jobrunner.cli import main
from jobrunner.store.keys import Keys

Invoke = Callable[..., Result]
CLI = [sys.executable, "-m", "jobrunner.cli"]


def clean_environ(**extra: str) -> dict[str, str]:
    """This process's environment without JOBRUNNER_* variables, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBRUNNER_")}
    return {**env, **extra}


def as_json(result: Result) -> Any:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def kill_group(proc: subprocess.Popen[Any]) -> None:
    """Leave nothing behind: kill the process group a test started in its own session
    (children may outlive its leader), then reap the leader."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(10)


@pytest.fixture
def cli_env(redis_url: str, key_prefix: str, tmp_path: Path) -> dict[str, str]:
    """What a client of the test deployment sets: its Redis, its own prefix, the demo tasks."""
    return {
        "JOBRUNNER_REDIS_URL": redis_url,
        "JOBRUNNER_KEY_PREFIX": key_prefix,
        "JOBRUNNER_DEMO_TASKS": "true",
        "JOBRUNNER_DATA_DIR": str(tmp_path / "data"),
        "JOBRUNNER_PROGRESS_INTERVAL_SECONDS": "0",
    }


@pytest.fixture
def invoke(
    cli_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Invoke]:
    """Run `jobrunner ARGS` in-process with ``cli_env`` (no stray JOBRUNNER_* or .env file)."""
    for name in [k for k in os.environ if k.startswith("JOBRUNNER_")]:
        monkeypatch.delenv(name)
    for name, value in cli_env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    saved_structlog = structlog.get_config()
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level

    def run(*args: str) -> Result:
        return CliRunner().invoke(main, list(args), catch_exceptions=False)

    yield run
    # the CLI configures logging to the stream CliRunner lent it; give the next test a clean slate
    structlog.configure(**saved_structlog)
    root.handlers[:], root.level = saved_handlers, saved_level


def _wait_registered(
    redis_url: str, key_prefix: str, proc: subprocess.Popen[bytes], log: Path
) -> None:
    """Until the worker is in the registry (so commands see a live worker on its queues)."""
    client = sync_redis.Redis.from_url(redis_url)
    deadline = time.monotonic() + 30
    try:
        while not client.zcard(Keys(key_prefix).workers):
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "the worker did not register within 30s"
            time.sleep(0.05)
    finally:
        client.close()


@pytest.fixture
def worker_process(
    cli_env: dict[str, str], redis_url: str, key_prefix: str, tmp_path: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """`jobrunner worker` on the pro and free queues, stopped with SIGTERM (it must exit 0)."""
    log = tmp_path / "worker.log"
    with log.open("wb") as sink:
        proc = subprocess.Popen(
            [*CLI, "worker", "--queues", "pro,free", "--concurrency", "4"],
            env=clean_environ(**cli_env),
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        _wait_registered(redis_url, key_prefix, proc, log)
        yield proc
        assert proc.poll() is None, log.read_text()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0, log.read_text()
    finally:
        kill_group(proc)
