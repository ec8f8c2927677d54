"""The `jobrunner` command against a worker process: status with audit and result, list,
cancel, workers, and upload -> validate_csv. Single-command behaviour is in test_cli.py."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
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
        "--json",
    )
    assert done.returncode == 0, done.stderr
    record = json.loads(done.stdout)
    assert record["status"] == "succeeded"
    assert "step 3/3" in done.stderr  # the progress line
    status = json.loads(cli(env, "status", record["id"], "--json").stdout)
    assert next(a["event"] for a in status["audit"]) == "enqueued"
    listing = json.loads(cli(env, "list", "--tenant", "acme", "--json").stdout)
    assert listing["total"] == 1
    deferred = json.loads(cli(env, "enqueue", "demo.echo", "--defer", "300", "--json").stdout)
    cancelled = json.loads(cli(env, "cancel", deferred["id"], "--json").stdout)
    assert cancelled["status"] == "cancelled"
    workers = json.loads(cli(env, "workers", "--json").stdout)
    assert workers[0]["queues"] == ["pro", "free"]


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
    args = ["enqueue", "validate_csv", "--params", params, "--wait", "--plan", "pro", "--json"]
    done = cli(env, *args)
    assert done.returncode == 0, done.stderr
    status = json.loads(cli(env, "status", json.loads(done.stdout)["id"], "--json").stdout)
    assert status["result"]["total_rows"] == 2
    assert status["result"]["errors_by_code"] == {"min": 1}
