"""The `jobrunner` command as users run it: real processes, a real Redis."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

JOBRUNNER = str(Path(sys.executable).with_name("jobrunner"))


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBRUNNER_")}
    env.update(extra)
    return env


def cli(env: dict[str, str], *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [JOBRUNNER, *args], env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


@pytest.fixture
def env(redis_url: str, key_prefix: str, tmp_path: Path) -> dict[str, str]:
    return clean_env(
        JOBRUNNER_REDIS_URL=redis_url,
        JOBRUNNER_KEY_PREFIX=key_prefix,
        JOBRUNNER_DEMO_TASKS="true",
        JOBRUNNER_DATA_DIR=str(tmp_path),
    )


@pytest.fixture
def worker_process(env: dict[str, str]) -> Iterator[subprocess.Popen[str]]:
    proc = subprocess.Popen(
        [JOBRUNNER, "worker", "--queues", "pro,free", "--concurrency", "4"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    yield proc
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0


def test_enqueue_wait_status_list_and_cancel(env: dict[str, str], worker_process: object) -> None:
    done = cli(
        env,
        "enqueue",
        "demo.sleep",
        "--params",
        '{"seconds": 0.3, "steps": 3}',
        "--wait",
        "--tenant",
        "acme",
    )
    assert done.returncode == 0, done.stderr
    record = json.loads(done.stdout)
    assert record["status"] == "succeeded"
    assert "step 3/3" in done.stderr  # the progress line
    status = json.loads(cli(env, "status", record["id"]).stdout)
    assert next(a["event"] for a in status["audit"]) == "enqueued"
    listing = json.loads(cli(env, "list", "--tenant", "acme").stdout)
    assert listing["total"] == 1
    deferred = json.loads(cli(env, "enqueue", "demo.echo", "--defer", "300").stdout)
    cancelled = json.loads(cli(env, "cancel", deferred["id"]).stdout)
    assert cancelled["status"] == "cancelled"
    workers = json.loads(cli(env, "workers").stdout)
    assert workers[0]["queues"] == ["pro", "free"]


def test_failed_job_exits_1(env: dict[str, str], worker_process: object) -> None:
    failed = cli(env, "enqueue", "demo.flaky", "--params", '{"fail_times": -1}', "--wait")
    assert failed.returncode == 1
    assert json.loads(failed.stdout)["error"]["code"] == "flaky_permanent"


def test_bad_input_is_one_clear_line(env: dict[str, str]) -> None:
    bad = cli(env, "enqueue", "demo.sleep", "--params", '{"seconds": "x"}')
    assert bad.returncode == 1
    assert "error [invalid_params]" in bad.stderr and "seconds" in bad.stderr
    unknown = cli(env, "enqueue", "no.such.task")
    assert unknown.returncode == 1 and "demo.echo" in unknown.stderr
    missing = cli(env, "status", "f" * 32)
    assert missing.returncode == 1 and "job_not_found" in missing.stderr
    not_json = cli(env, "enqueue", "demo.echo", "--params", "{oops")
    assert not_json.returncode == 2 and "not JSON" in not_json.stderr
    no_url = cli(clean_env(), "worker")
    assert no_url.returncode == 2 and "JOBRUNNER_REDIS_URL" in no_url.stderr


def test_up_runs_everything_on_an_embedded_redis(tmp_path: Path) -> None:
    data = tmp_path / "data"
    proc = subprocess.Popen(
        [JOBRUNNER, "up", "--data-dir", str(data)],
        env=clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        match = re.search(r"redis://127\.0\.0\.1:(\d+)/0", first)
        assert match, first
        client = clean_env(JOBRUNNER_REDIS_URL=match.group(0), JOBRUNNER_DEMO_TASKS="true")
        done = cli(client, "enqueue", "demo.echo", "--params", '{"hello": "up"}', "--wait")
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["status"] == "succeeded"
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    time.sleep(0.2)
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", int(match.group(1)))) != 0  # embedded Redis stopped
    assert list((data / "redis").glob("appendonly*"))


def test_upload_then_validate_a_catalog(
    env: dict[str, str], worker_process: object, tmp_path: Path
) -> None:
    catalog = tmp_path / "catalog.csv"
    catalog.write_bytes("sku;title;price\nA1;Camiseta;10,50\nA2;Boné;-1\n".encode("cp1252"))
    uploaded = cli(env, "upload", str(catalog))
    assert uploaded.returncode == 0, uploaded.stderr
    uri = uploaded.stdout.strip()
    assert uri.startswith("upload://")
    params = json.dumps({"input_uri": uri})
    done = cli(env, "enqueue", "validate_csv", "--params", params, "--wait", "--plan", "pro")
    assert done.returncode == 0, done.stderr
    status = json.loads(cli(env, "status", json.loads(done.stdout)["id"]).stdout)
    assert status["result"]["total_rows"] == 2
    assert status["result"]["errors_by_code"] == {"min": 1}
