"""`jobrunner health`, the containers' health check: exit 0 when every check passes, else 1
(never 2, which Docker reserves), one line per check or --json."""

from __future__ import annotations

import json
import subprocess

import pytest

from jobrunner.embedded import free_port
from tests.clitools import Invoke, as_json


def test_redis_answers(invoke: Invoke) -> None:
    result = invoke("health")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("redis: ok (redis://127.0.0.1:")
    report = as_json(invoke("health", "--json"))
    assert report["ok"] is True
    assert [c["name"] for c in report["checks"]] == ["redis"]


def test_a_silent_redis_is_unhealthy(invoke: Invoke, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOBRUNNER_REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")
    result = invoke("health", "--timeout", "1", "--json")
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["ok"] is False
    (check,) = report["checks"]
    assert check["name"] == "redis" and not check["ok"]
    assert "cannot reach Redis" in check["detail"]


def test_no_redis_url_exits_1_not_dockers_reserved_2(
    invoke: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("JOBRUNNER_REDIS_URL")
    result = invoke("health")
    assert result.exit_code == 1
    assert result.stderr.startswith("error [config_error]: JOBRUNNER_REDIS_URL is not set")


def test_worker_check_wants_a_beating_worker_on_this_host(
    invoke: Invoke, worker_process: subprocess.Popen[bytes]
) -> None:
    result = invoke("health", "--worker")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith("redis: ok")
    assert lines[1].startswith("worker: ok (1 on ")


def test_worker_check_without_a_worker_fails(invoke: Invoke) -> None:
    result = invoke("health", "--worker")
    assert result.exit_code == 1
    assert "worker: FAIL (no worker on " in result.stdout


def test_api_check_reads_readyz(invoke: Invoke) -> None:
    result = invoke("health", "--api", f"http://127.0.0.1:{free_port()}", "--timeout", "1")
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert lines[0].startswith("redis: ok")
    assert lines[1].startswith("api: FAIL (http://127.0.0.1:")
