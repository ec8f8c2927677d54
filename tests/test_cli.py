"""The `jobrunner` command against a real throwaway Redis.

Quick commands run in-process through click's CliRunner; workers and `up` run as real
processes and are stopped with SIGTERM, as an operator would.
"""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis as sync_redis
import structlog
from click.testing import CliRunner, Result

from jobrunner.cli import main
from jobrunner.embedded import free_port
from tests.s3_server import S3Server

Invoke = Callable[..., Result]
CLI = [sys.executable, "-m", "jobrunner.cli"]


def _environ(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBRUNNER_")}
    return {**env, **extra}


@pytest.fixture
def env(redis_url: str, key_prefix: str, tmp_path: Path) -> dict[str, str]:
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
    env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Invoke]:
    """Run `jobrunner ARGS` in-process with ``env`` (no stray JOBRUNNER_* or .env file)."""
    for name in [k for k in os.environ if k.startswith("JOBRUNNER_")]:
        monkeypatch.delenv(name)
    for name, value in env.items():
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


@pytest.fixture
def worker_process(env: dict[str, str], tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    log = tmp_path / "worker.log"
    with log.open("wb") as sink:
        proc = subprocess.Popen(
            [*CLI, "worker", "--queues", "pro,free", "--concurrency", "4"],
            env=_environ(**env),
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    yield proc
    assert proc.poll() is None, log.read_text()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(10) == 0, log.read_text()


def _json(result: Result) -> Any:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_enqueue_wait_follows_progress_and_exits_0(
    invoke: Invoke, worker_process: subprocess.Popen[bytes]
) -> None:
    done = invoke("enqueue", "demo.sleep", "--params", '{"seconds": 0.3, "steps": 3}', "--wait")
    assert done.exit_code == 0, done.stderr
    assert done.stdout.lstrip("{\n ").startswith('"id"')  # the job id comes first
    record = json.loads(done.stdout)
    assert record["status"] == "succeeded"
    assert "step 3/3" in done.stderr
    status = _json(invoke("status", record["id"]))
    assert status["result"] == {"slept": 0.3, "steps": 3}
    assert next(a["event"] for a in status["audit"]) == "enqueued"
    workers = _json(invoke("workers"))
    assert [w["queues"] for w in workers] == [["pro", "free"]]
    by_plan = {q["plan"]: q for q in _json(invoke("queues"))}
    assert (by_plan["pro"]["workers"], by_plan["enterprise"]["workers"]) == (1, 0)
    assert by_plan["free"]["queued"] == 0


def test_enqueue_wait_exits_1_when_the_job_fails(
    invoke: Invoke, worker_process: subprocess.Popen[bytes]
) -> None:
    failed = invoke("enqueue", "demo.flaky", "--params", '{"fail_times": -1}', "--wait")
    assert failed.exit_code == 1
    record = json.loads(failed.stdout)
    assert record["status"] == "failed"
    assert record["error"]["code"] == "flaky_permanent"


def test_wait_gives_up_after_its_timeout(invoke: Invoke) -> None:
    waited = invoke("enqueue", "demo.echo", "--wait", "--timeout", "0.3")  # no worker runs
    assert waited.exit_code == 1
    assert "error [wait_timeout]" in waited.stderr


def test_bad_params_name_the_field(invoke: Invoke) -> None:
    bad = invoke("enqueue", "demo.sleep", "--params", '{"seconds": "x", "steps": 2}')
    assert bad.exit_code == 1
    (line,) = bad.stderr.splitlines()
    assert line.startswith("error [invalid_params]: ") and "seconds" in line


def test_params_must_be_a_json_object(invoke: Invoke) -> None:
    not_json = invoke("enqueue", "demo.echo", "--params", "{oops")
    assert not_json.exit_code == 2 and "not JSON" in not_json.stderr
    not_object = invoke("enqueue", "demo.echo", "--params", "[1]")
    assert not_object.exit_code == 2 and "JSON object" in not_object.stderr


def test_unknown_task_lists_the_known_ones(invoke: Invoke) -> None:
    unknown = invoke("enqueue", "no.such.task")
    assert unknown.exit_code == 1
    assert "error [unknown_task]" in unknown.stderr
    assert "demo.echo" in unknown.stderr and "demo.sleep" in unknown.stderr


def test_status_of_an_unknown_job(invoke: Invoke) -> None:
    for job_id in ("f" * 32, "not-an-id"):
        missing = invoke("status", job_id)
        assert missing.exit_code == 1
        assert missing.stderr.startswith("error [job_not_found]: ")


def test_list_filters_and_pages(invoke: Invoke) -> None:
    for task, tenant in [("demo.echo", "acme"), ("demo.sleep", "acme"), ("demo.echo", "other")]:
        _json(invoke("enqueue", task, "--tenant", tenant, "--defer", "300"))
    acme = _json(invoke("list", "--tenant", "acme"))
    assert acme["total"] == 2
    assert {job["task"] for job in acme["items"]} == {"demo.echo", "demo.sleep"}
    echo = _json(invoke("list", "--tenant", "acme", "--task", "demo.echo"))
    assert [job["task"] for job in echo["items"]] == ["demo.echo"]
    page = _json(invoke("list", "--tenant", "acme", "--limit", "1", "--offset", "1"))
    assert len(page["items"]) == 1
    assert _json(invoke("list", "--tenant", "acme", "--status", "succeeded"))["items"] == []
    assert invoke("list", "--status", "bogus").exit_code == 2


def test_cancel_a_deferred_job(invoke: Invoke) -> None:
    deferred = _json(invoke("enqueue", "demo.echo", "--defer", "300", "--idempotency-key", "k1"))
    assert deferred["status"] == "queued"
    assert deferred["scheduled_at"] > deferred["created_at"]
    cancelled = _json(invoke("cancel", deferred["id"]))
    assert cancelled["status"] == "cancelled"
    again = invoke("cancel", deferred["id"])
    assert again.exit_code == 1 and "error [job_not_cancellable]" in again.stderr
    audit = [a["event"] for a in _json(invoke("status", deferred["id"]))["audit"]]
    assert audit[0] == "enqueued" and "cancelled" in audit[-1]


def test_commands_other_than_up_need_a_redis_url(
    invoke: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("JOBRUNNER_REDIS_URL")
    for args in (["worker"], ["list"], ["status", "f" * 32]):
        no_url = invoke(*args)
        assert no_url.exit_code == 2
        assert no_url.stderr.startswith("error [config_error]: JOBRUNNER_REDIS_URL is not set")
    monkeypatch.setenv("JOBRUNNER_REDIS_URL", "localhost:6379")
    malformed = invoke("list")
    assert malformed.exit_code == 2 and "redis://" in malformed.stderr


def test_invalid_settings_are_one_line(invoke: Invoke) -> None:
    bad = invoke("worker", "--queues", "gold")
    assert bad.exit_code == 2
    (line,) = bad.stderr.splitlines()
    assert line.startswith("error [config_error]: invalid settings") and "gold" in line


def test_unreachable_redis_is_one_line(invoke: Invoke, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOBRUNNER_REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")
    down = invoke("list")
    assert down.exit_code == 1
    (line,) = down.stderr.splitlines()
    assert line.startswith("error [redis_unavailable]: cannot reach Redis")


def test_worker_process_without_a_url_fails_clearly() -> None:
    done = subprocess.run(
        [*CLI, "worker"], env=_environ(), capture_output=True, text=True, timeout=30, check=False
    )
    assert done.returncode == 2
    assert "JOBRUNNER_REDIS_URL is not set" in done.stderr and "Traceback" not in done.stderr


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _start_up(data: Path, api_port: int) -> tuple[subprocess.Popen[str], list[str]]:
    up = subprocess.Popen(
        [*CLI, "up", "--data-dir", str(data), "--concurrency", "4", "--port", str(api_port)],
        env=_environ(),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert up.stdout is not None
    return up, [up.stdout.readline() for _ in range(10)]


def _printed(lines: list[str], label: str) -> str:
    line = next(line for line in lines if line.strip().startswith(label))
    return line.split(label, 1)[1].split()[0]


def test_up_runs_everything_on_an_embedded_redis(tmp_path: Path) -> None:
    data, api_port = tmp_path / "data", free_port()
    up, lines = _start_up(data, api_port)
    try:
        match = re.search(r"redis://127\.0\.0\.1:(\d+)/0", lines[0])
        assert match, lines
        url, port = match.group(0), int(match.group(1))
        assert any(
            f"JOBRUNNER_REDIS_URL={url}" in line and "jobrunner worker" in line for line in lines
        )
        assert any("arq jobrunner.worker.WorkerSettings" in line for line in lines)
        api_url = f"http://127.0.0.1:{api_port}"
        assert _printed(lines, "HTTP API:") == api_url and f"{api_url}/docs" in "".join(lines)
        assert _printed(lines, "dashboard:") == f"{api_url}/dashboard"
        signin = httpx.get(f"{api_url}/dashboard", follow_redirects=True)
        assert signin.status_code == 200 and 'name="secret"' in signin.text
        token, dev_key = _printed(lines, "admin token:"), _printed(lines, "dev API key:")
        assert (data / "admin_token").read_text().strip() == token
        assert (data / "admin_token").stat().st_mode & 0o077 == 0
        tasks = httpx.get(f"{api_url}/api/v1/tasks", headers={"Authorization": f"Bearer {dev_key}"})
        assert tasks.status_code == 200 and "demo.echo" in tasks.text
        keys = httpx.get(
            f"{api_url}/api/v1/admin/keys", headers={"Authorization": f"Bearer {token}"}
        )
        assert [(k["tenant"], k["plan"]) for k in keys.json()["items"]] == [("dev", "pro")]
        client = _environ(JOBRUNNER_REDIS_URL=url, JOBRUNNER_DEMO_TASKS="true")
        done = subprocess.run(
            [*CLI, "enqueue", "demo.echo", "--params", "{}", "--wait", "--timeout", "30"],
            env=client,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["status"] == "succeeded"
    finally:
        up.send_signal(signal.SIGTERM)
        assert up.wait(15) == 0
    deadline = time.monotonic() + 5
    while _port_open(port) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _port_open(port), "the embedded redis-server outlived `jobrunner up`"
    assert not _port_open(api_port), "the API outlived `jobrunner up`"
    assert list((data / "redis").glob("appendonly*"))
    again, lines = _start_up(data, api_port)  # same data dir: the same token and key
    try:
        answer = httpx.get(
            f"{api_url}/api/v1/tasks", headers={"Authorization": f"Bearer {dev_key}"}
        )
        assert answer.status_code == 200  # and serving, so its signal handlers are in place
        assert _printed(lines, "admin token:") == token
        assert _printed(lines, "dev API key:") == dev_key
    finally:
        again.send_signal(signal.SIGTERM)
        assert again.wait(15) == 0


def test_upload_copies_a_file_into_the_blob_store(invoke: Invoke, tmp_path: Path) -> None:
    catalog = tmp_path / "catalog.csv"
    catalog.write_text("sku;title\nA1;Camiseta\n")
    uploaded = invoke("upload", str(catalog))
    assert uploaded.exit_code == 0, uploaded.stderr
    assert uploaded.stdout.strip().startswith("upload://")
    stored = [p for p in (tmp_path / "data").rglob("*") if p.is_file()]
    assert [p.read_text() for p in stored] == [catalog.read_text()]
    assert invoke("upload", str(tmp_path / "missing.csv")).exit_code == 2


def test_upload_goes_to_the_bucket_the_blob_url_names(
    invoke: Invoke, s3_server: S3Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    values = s3_server.settings_for()
    for name, value in values.items():
        monkeypatch.setenv(f"JOBRUNNER_{name.upper()}", str(value))
    catalog = tmp_path / "catalog.csv"
    catalog.write_text("sku;title\nA1;Camiseta\n")
    uploaded = invoke("upload", str(catalog))
    assert uploaded.exit_code == 0, uploaded.stderr
    blob_id = uploaded.stdout.strip().removeprefix("upload://").split("/")[0]
    prefix = values["blob_url"].rsplit("/", 1)[1]
    assert s3_server.keys(prefix + "/") == [f"{prefix}/{blob_id}/catalog.csv"]
    assert not (tmp_path / "data" / "blobs").exists()
    monkeypatch.setenv("JOBRUNNER_BLOB_URL", "ftp://files/x")
    bad = invoke("upload", str(catalog))
    assert bad.exit_code == 2
    (line,) = bad.stderr.splitlines()
    assert line.startswith("error [config_error]: invalid settings: blob_url")


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["--ttl", "1e300"], "invalid_override"),
        (["--ttl", "1e12"], "invalid_override"),
        (["--defer", "1e300"], "invalid_override"),
        (["--ttl", "nan"], "invalid_input"),
        (["--defer", "inf"], "invalid_input"),
        (["--params", '{"x": NaN}'], "invalid_params"),
        (["--params", '{"x": [1, -Infinity]}'], "invalid_params"),
        (["--params", '{"a":' * 100 + "1" + "}" * 100], "invalid_params"),
        (["--params", '{"a":' * 5000 + "1" + "}" * 5000], "invalid_params"),  # past the parser
    ],
)
def test_out_of_bounds_options_and_params_are_one_line_and_exit_1(
    invoke: Invoke, args: list[str], code: str
) -> None:
    refused = invoke("enqueue", "demo.echo", *args)
    assert refused.exit_code == 1
    (line,) = refused.stderr.splitlines()
    assert line.startswith(f"error [{code}]: ")
    assert _json(invoke("list"))["total"] == 0


def test_list_and_status_report_an_undecodable_record_and_go_on(
    invoke: Invoke, redis_url: str, key_prefix: str
) -> None:
    ids = [_json(invoke("enqueue", "demo.echo", "--defer", "300"))["id"] for _ in range(2)]
    client = sync_redis.Redis.from_url(redis_url)
    try:  # what `--ttl 1e300` stored before bounds: list and status crashed for the tenant
        client.hset(f"{key_prefix}:job:{ids[0]}", "expires_at", "1e303")
    finally:
        client.close()
    listed = invoke("list")
    assert listed.exit_code == 0
    page = json.loads(listed.stdout)
    assert [job["id"] for job in page["items"]] == [ids[1]]
    assert [(s["id"], s["code"]) for s in page["skipped"]] == [(ids[0], "record_corrupt")]
    (warning,) = listed.stderr.splitlines()
    assert warning == f"warning: skipped 1 undecodable record(s): {ids[0]} (record_corrupt)"
    status = invoke("status", ids[0])
    assert status.exit_code == 1
    (line,) = status.stderr.splitlines()
    assert line.startswith(f"error [record_corrupt]: job record {ids[0]} does not decode")


def test_a_redis_that_stops_answering_is_one_line_with_the_reason(
    invoke: Invoke,
    stoppable_redis: tuple[str, subprocess.Popen[bytes]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url, proc = stoppable_redis
    monkeypatch.setenv("JOBRUNNER_REDIS_URL", url)
    monkeypatch.setenv("JOBRUNNER_REDIS_TIMEOUT_SECONDS", "0.3")
    proc.send_signal(signal.SIGSTOP)
    down = invoke("list")
    assert down.exit_code == 1
    (line,) = down.stderr.splitlines()
    assert line == f"error [redis_unavailable]: cannot reach Redis at {url}: no answer within 0.6s"
