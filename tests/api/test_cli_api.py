"""`jobrunner keys` in-process, and end to end: `jobrunner api` and `jobrunner worker` as real
processes take a validate_csv job from a multipart 202 to a downloaded report, following its
SSE stream."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from jobrunner.cli import main
from jobrunner.embedded import free_port

CLI = [sys.executable, "-m", "jobrunner.cli"]
CSV = b"sku,title,price\nA1,Red shirt,10.50\nA2,,abc\nA3,Blue hat,7\n"


@pytest.fixture
def env(redis_url: str, key_prefix: str, tmp_path: Path) -> dict[str, str]:
    return {
        "JOBRUNNER_REDIS_URL": redis_url,
        "JOBRUNNER_KEY_PREFIX": key_prefix,
        "JOBRUNNER_DATA_DIR": str(tmp_path / "data"),
        "JOBRUNNER_ADMIN_TOKEN": "e2e-admin-token-0123456789",
    }


def _environ(env: dict[str, str]) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("JOBRUNNER_")}
    return {**clean, **env}


def test_keys_create_list_revoke(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in [k for k in os.environ if k.startswith("JOBRUNNER_")]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    cli = CliRunner()
    made = cli.invoke(main, ["keys", "create", "--tenant", "acme", "--plan", "pro", "--json"])
    assert made.exit_code == 0, made.output
    created = json.loads(made.stdout)
    assert created["api_key"].startswith("jr_") and created["tenant"] == "acme"
    listed = json.loads(cli.invoke(main, ["keys", "list", "--json"]).stdout)
    assert [k["key_id"] for k in listed] == [created["key_id"]]
    assert created["api_key"] not in json.dumps(listed)
    table = cli.invoke(main, ["keys", "list"]).stdout.splitlines()
    assert table[0].split() == ["KEY", "TENANT", "PLAN", "JOBS/MONTH", "REQUESTS/S", "CREATED"]
    assert table[1].split()[:5] == [created["key_id"], "acme", "pro", "100000", "50"]
    assert created["api_key"] not in "\n".join(table)
    text = cli.invoke(main, ["keys", "create", "--tenant", "beta", "--plan", "free"]).stdout
    first, second = text.splitlines()
    assert first.startswith("created key ") and first.endswith(" for tenant beta (plan free)")
    assert second.startswith("api key (shown only now): jr_")
    assert cli.invoke(main, ["keys", "revoke", created["key_id"]]).exit_code == 0
    gone = cli.invoke(main, ["keys", "revoke", created["key_id"]])
    assert gone.exit_code == 1 and "no API key" in gone.stderr
    bad = cli.invoke(main, ["keys", "create", "--tenant", "acme", "--plan", "gold"])
    assert bad.exit_code == 1 and "unknown plan" in bad.stderr


@pytest.fixture
def processes(env: dict[str, str], tmp_path: Path) -> Iterator[str]:
    """`jobrunner api` on a free port and `jobrunner worker`, each its own process."""
    port = free_port()
    logs = [(tmp_path / f"{name}.log").open("wb") for name in ("api", "worker")]
    commands = [
        [*CLI, "api", "--port", str(port)],
        [*CLI, "worker", "--queues", "pro,free", "--concurrency", "2"],
    ]
    procs = [
        subprocess.Popen(cmd, env=_environ(env), stdout=log, stderr=subprocess.STDOUT)
        for cmd, log in zip(commands, logs, strict=True)
    ]
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            assert all(p.poll() is None for p in procs), (tmp_path / "api.log").read_text()
            try:
                httpx.get(f"{url}/openapi.json", timeout=1)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the API did not come up"
                time.sleep(0.05)
        yield url
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        # uvicorn re-raises the SIGTERM it handled once it has shut down gracefully
        api_proc, worker_proc = procs
        assert api_proc.wait(20) in (0, -signal.SIGTERM)
        assert worker_proc.wait(20) == 0
        for log in logs:
            log.close()


@pytest.mark.slow
def test_multipart_csv_to_downloaded_report_over_real_processes(
    processes: str, env: dict[str, str]
) -> None:
    url = processes
    admin = {"Authorization": f"Bearer {env['JOBRUNNER_ADMIN_TOKEN']}"}
    with httpx.Client(base_url=url, timeout=30) as http:
        key = http.post("/api/v1/admin/keys", json={"tenant": "acme", "plan": "pro"}, headers=admin)
        auth = {"Authorization": f"Bearer {key.json()['api_key']}", "X-Correlation-Id": "e2e-1"}
        reply = http.post(
            "/api/v1/jobs",
            data={"task": "validate_csv", "params": '{"marketplace": "default"}'},
            files={"file": ("catalog.csv", CSV, "text/csv")},
            headers=auth,
        )
        assert reply.status_code == 202, reply.text
        job = reply.json()
        statuses = []
        with http.stream("GET", job["links"]["stream"], headers=auth) as stream:
            for line in stream.iter_lines():
                if line.startswith("data: "):
                    statuses.append(json.loads(line[6:])["status"])
        assert statuses[-1] == "succeeded" and statuses.count("succeeded") == 1
        result = http.get(job["links"]["result"], headers=auth).json()
        summary = result["result"]
        assert (summary["total_rows"], summary["valid_rows"], summary["invalid_rows"]) == (3, 2, 1)
        report = http.get(result["files"]["report_ref"], headers=auth)
        assert report.status_code == 200
        assert report.headers["content-disposition"].startswith('attachment; filename="errors.csv"')
        assert b"type_decimal" in report.content and b"required" in report.content
        record = http.get(job["links"]["self"], headers=auth).json()
        assert record["correlation_id"] == "e2e-1"
