"""`jobrunner up` as a terminal runs it: in its own process group, stopped by Ctrl-C (SIGINT to
the whole group). Running jobs drain, Redis stops last, nothing is left running; one `up` per
data dir; a restart keeps the Redis URL that `jobrunner env` prints."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from jobrunner.datalock import LOCK_FILE
from jobrunner.embedded import free_port
from tests.clitools import CLI, clean_environ, kill_group
from tests.processes import wait_for

pytestmark = pytest.mark.slow

_BAD = ("Traceback", "Task exception was never retrieved", "ConnectionError", "Error 111")


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return not Path(f"/proc/{pid}/stat").read_text().split(")")[-1].startswith(" Z")


class Up:
    """One `jobrunner up` in its own session; its output goes to files the test reads."""

    def __init__(self, data: Path, logs: Path, api_port: int | None = None, **env: str) -> None:
        self.data = data
        self.api_port = api_port or free_port()
        self.out, self.err = logs.with_suffix(".out"), logs.with_suffix(".err")
        variables = {"JOBRUNNER_SHUTDOWN_GRACE_SECONDS": "20", **env}
        with self.out.open("wb") as out, self.err.open("wb") as err:
            self.proc = subprocess.Popen(
                [*CLI, "up", "--data-dir", str(data), "--port", str(self.api_port)],
                env=clean_environ(**variables),
                stdout=out,
                stderr=err,
                start_new_session=True,  # its own process group, like a terminal's foreground job
            )

    def url(self) -> str:
        def printed() -> str | None:
            assert self.proc.poll() is None, self.err.read_text()
            found = re.search(r"Redis \(embedded.*\): (redis://\S+)", self.out.read_text())
            return found.group(1) if found else None

        return str(wait_for(printed, "the banner of `jobrunner up`"))

    def ctrl_c(self) -> None:
        os.killpg(self.proc.pid, signal.SIGINT)  # what a terminal does on Ctrl-C

    def stopped(self, timeout: float = 30) -> int:
        return self.proc.wait(timeout)

    def redis_pid(self) -> int:
        return int(json.loads((self.data / LOCK_FILE).read_text())["redis_pid"])


@pytest.fixture
def start_up(tmp_path: Path) -> Iterator[Callable[..., Up]]:
    started: list[Up] = []

    def start(api_port: int | None = None, **env: str) -> Up:
        up = Up(tmp_path / "data", tmp_path / f"up{len(started)}", api_port, **env)
        started.append(up)
        return up

    yield start
    for up in started:
        kill_group(up.proc)


def second_terminal(data: Path) -> dict[str, str]:
    """The JOBRUNNER_* variables a shell has after `eval "$(jobrunner env --data-dir DATA)"`."""
    script = f'eval "$({shlex.join(CLI)} env --data-dir {shlex.quote(str(data))})" && env -0'
    done = subprocess.run(
        ["bash", "-c", script], env=clean_environ(), capture_output=True, timeout=60, check=True
    )
    pairs = (item.decode().partition("=") for item in done.stdout.split(b"\0") if item)
    return {name: value for name, _, value in pairs if name.startswith("JOBRUNNER_")}


def client(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args],
        env=clean_environ(**env),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def enqueue(env: dict[str, str], params: dict[str, Any]) -> str:
    done = client(env, "enqueue", "demo.sleep", "--params", json.dumps(params), "--json")
    assert done.returncode == 0, done.stderr
    return str(json.loads(done.stdout)["id"])


def status(env: dict[str, str], job_id: str) -> dict[str, Any]:
    done = client(env, "status", job_id, "--json")
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def started(env: dict[str, str], job_id: str) -> bool:
    state = status(env, job_id)["status"]
    assert state in ("queued", "running"), state
    return state == "running"


def port_open(url: str) -> bool:
    port = int(url.rsplit(":", 1)[1].split("/")[0])  # redis://host:PORT/0 or http://host:PORT
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_ctrl_c_drains_then_stops_redis_and_a_restart_keeps_the_url(
    start_up: Callable[..., Up], tmp_path: Path
) -> None:
    up = start_up()
    url = up.url()
    data = tmp_path / "data"
    env = second_terminal(data)
    assert env == {
        "JOBRUNNER_REDIS_URL": url,
        "JOBRUNNER_DATA_DIR": str(data),
        "JOBRUNNER_DEMO_TASKS": "true",
    }
    second = subprocess.run(
        [*CLI, "up", "--data-dir", str(data), "--port", str(free_port())],
        env=clean_environ(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert second.returncode == 2
    assert second.stderr.startswith("error [data_dir_in_use]: data dir ")
    assert f"in use by pid {up.proc.pid} (" in second.stderr and url in second.stderr
    job_id = enqueue(env, {"seconds": 4, "steps": 4})
    wait_for(lambda: started(env, job_id), "the job to start")
    redis_pid = up.redis_pid()
    up.ctrl_c()
    assert up.stopped() == 0
    err = up.err.read_text()
    assert "stopping: 1 running job(s) get up to 20s to finish" in err
    assert not any(bad in err for bad in _BAD), err
    assert not alive(redis_pid) and not port_open(url), "nothing may be left running"
    again = start_up()
    assert again.url() == url  # the same port: the other terminal's exports still work
    assert second_terminal(data) == env
    done = status(env, job_id)
    assert done["status"] == "succeeded" and done["attempts"] == 1  # it ran to its end
    assert done["result"] == {"slept": 4, "steps": 4}
    again.ctrl_c()
    assert again.stopped() == 0


def test_a_second_ctrl_c_stops_running_jobs_at_once(
    start_up: Callable[..., Up], tmp_path: Path
) -> None:
    data = tmp_path / "data"
    up = start_up()
    up.url()
    env = second_terminal(data)
    job_id = enqueue(env, {"seconds": 60, "steps": 60})
    wait_for(lambda: started(env, job_id), "the job to start")
    up.ctrl_c()
    wait_for(lambda: "stopping: 1 running job(s)" in up.err.read_text(), "the first stop")
    second_signal = time.monotonic()
    up.ctrl_c()
    assert up.stopped() == 0
    assert time.monotonic() - second_signal < 10  # not the 20 s grace period
    err = up.err.read_text()
    assert "stopping now: running jobs go back to the queue" in err
    assert not any(bad in err for bad in _BAD), err
    again = start_up()
    again.url()
    record = status(env, job_id)
    assert record["interruptions"] == 1  # back to the queue, to run again: never failed
    assert record["status"] in ("queued", "running")
    assert client(env, "cancel", job_id).returncode == 0
    again.ctrl_c()
    assert again.stopped() == 0


def test_a_killed_up_leaves_nothing_running_and_its_lock_is_taken_over(
    start_up: Callable[..., Up],
) -> None:
    up = start_up()
    url = up.url()
    redis_pid = up.redis_pid()
    os.killpg(up.proc.pid, signal.SIGKILL)  # no chance to clean up
    up.stopped()
    wait_for(lambda: not alive(redis_pid), "the embedded Redis to die with its owner", 10)
    again = start_up()
    assert again.url() == url
    assert "taking over a data dir whose owner died" in again.err.read_text()
    again.ctrl_c()
    assert again.stopped() == 0


def _printed(text: str, label: str) -> str:
    line = next(line for line in text.splitlines() if line.strip().startswith(label))
    return line.split(label, 1)[1].split()[0]


def test_up_serves_the_api_and_dashboard_beside_its_worker_and_keeps_its_token_and_key(
    start_up: Callable[..., Up], tmp_path: Path
) -> None:
    data = tmp_path / "data"
    up = start_up()
    url = up.url()
    text = wait_for(lambda: "dev API key:" in up.out.read_text() and up.out.read_text(), "API")
    api = _printed(text, "HTTP API:")
    assert api == f"http://127.0.0.1:{up.api_port}" and f"{api}/docs" in text
    assert _printed(text, "dashboard:") == f"{api}/dashboard"
    signin = httpx.get(f"{api}/dashboard", follow_redirects=True)
    assert signin.status_code == 200 and 'name="secret"' in signin.text
    token, dev_key = _printed(text, "admin token:"), _printed(text, "dev API key:")
    assert (data / "admin_token").read_text().strip() == token
    assert (data / "admin_token").stat().st_mode & 0o077 == 0
    tasks = httpx.get(f"{api}/api/v1/tasks", headers={"Authorization": f"Bearer {dev_key}"})
    assert tasks.status_code == 200 and "demo.echo" in tasks.text
    keys = httpx.get(f"{api}/api/v1/admin/keys", headers={"Authorization": f"Bearer {token}"})
    assert [(k["tenant"], k["plan"]) for k in keys.json()["items"]] == [("dev", "pro")]
    done = client(second_terminal(data), "enqueue", "demo.echo", "--wait", "--timeout", "30")
    assert done.returncode == 0, done.stderr
    up.ctrl_c()
    assert up.stopped() == 0
    assert not port_open(url) and not port_open(api), "nothing may outlive `jobrunner up`"
    assert list((data / "redis").glob("appendonly*"))
    again = start_up(api_port=up.api_port)  # the same data dir: the same token and key
    again.url()
    text = wait_for(lambda: "dev API key:" in again.out.read_text() and again.out.read_text(), "")
    assert (_printed(text, "admin token:"), _printed(text, "dev API key:")) == (token, dev_key)
    answer = httpx.get(f"{api}/api/v1/tasks", headers={"Authorization": f"Bearer {dev_key}"})
    assert answer.status_code == 200
    again.ctrl_c()
    assert again.stopped() == 0
