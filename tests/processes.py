"""Real `jobrunner` processes for end-to-end tests: each in its own session with its output in a
log file, waited for by event (an HTTP answer, a registry entry), and always killed with its
process group at the end, whatever the test did."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import redis as sync_redis

from jobrunner.store.keys import Keys
from tests.clitools import kill_group

JOBRUNNER = str(Path(sys.executable).with_name("jobrunner"))  # the venv's console script


def wait_for(check: Callable[[], Any], what: str, timeout: float = 30) -> Any:
    """Poll ``check`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not (value := check()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)
    return value


class Proc:
    """One command as a process of its own; ``log`` holds its stdout and stderr."""

    def __init__(
        self, argv: list[str], env: dict[str, str], log: Path, cwd: Path | None = None
    ) -> None:
        self.argv = argv
        self.log = log
        with log.open("ab") as sink:
            self.proc = subprocess.Popen(
                argv,
                env=env,
                cwd=cwd,
                stdout=sink,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def check_alive(self) -> None:
        assert self.proc.poll() is None, f"{self.argv} exited:\n{self.output()}"

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def stop(self, timeout: float = 30) -> int:
        """SIGTERM, then the exit status (within ``timeout``)."""
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def kill(self) -> None:
        kill_group(self.proc)


@contextlib.contextmanager
def processes() -> Iterator[list[Proc]]:
    """A list to put started processes in; every one is killed (group and all) at the end."""
    started: list[Proc] = []
    try:
        yield started
    finally:
        for proc in started:
            proc.kill()


def wait_http(proc: Proc, url: str, timeout: float = 30) -> None:
    """Until ``url`` answers 200 (the process must stay up meanwhile)."""

    def answers() -> bool:
        proc.check_alive()
        try:
            return httpx.get(url, timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    wait_for(answers, f"{url} to answer", timeout)


def registered_pids(redis_url: str, key_prefix: str) -> set[int]:
    """Process ids of the workers in the registry."""
    client = sync_redis.Redis.from_url(redis_url)
    try:
        keys = Keys(key_prefix)
        ids = [i.decode() for i in client.zrange(keys.workers, 0, -1)]
        pids = [client.hget(keys.worker(i), "pid") for i in ids]
    finally:
        client.close()
    return {int(p) for p in pids if p is not None}


def wait_registered(proc: Proc, redis_url: str, key_prefix: str, timeout: float = 30) -> None:
    def registered() -> bool:
        proc.check_alive()
        return proc.pid in registered_pids(redis_url, key_prefix)

    wait_for(registered, f"worker {proc.pid} to register", timeout)


async def wait_for_async(check: Callable[[], Any], what: str, timeout: float = 30) -> Any:
    """``wait_for`` off the event loop, for async tests."""
    return await asyncio.to_thread(wait_for, check, what, timeout)


def base_env(**extra: str) -> dict[str, str]:
    """This process's environment without JOBRUNNER_* variables, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBRUNNER_")}
    return {**env, **extra}
