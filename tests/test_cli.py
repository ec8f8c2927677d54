"""The `jobrunner` command against a real throwaway Redis: --json output, errors as one line.

Human output, short ids and the newer commands are in test_cli_everyday.py; `up` as a
process is in test_up.py. Fixtures (invoke, cli_env, worker_process) are in clitools.py.
"""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path

import pytest
import redis as sync_redis

from jobrunner.embedded import free_port
from tests.clitools import CLI, Invoke, as_json, clean_environ
from tests.s3_server import S3Server


def test_enqueue_wait_follows_progress_and_exits_0(
    invoke: Invoke, worker_process: subprocess.Popen[bytes]
) -> None:
    params = '{"seconds": 0.3, "steps": 3}'
    done = invoke("enqueue", "demo.sleep", "--params", params, "--wait", "--json")
    assert done.exit_code == 0, done.stderr
    assert done.stdout.lstrip("{\n ").startswith('"id"')  # the job id comes first
    record = json.loads(done.stdout)
    assert record["status"] == "succeeded"
    assert record["result"] == {"slept": 0.3, "steps": 3}
    assert "step 3/3" in done.stderr
    status = as_json(invoke("status", record["id"], "--json"))
    assert status["result"] == {"slept": 0.3, "steps": 3}
    assert next(a["event"] for a in status["audit"]) == "enqueued"
    workers = as_json(invoke("workers", "--json"))
    assert [w["queues"] for w in workers] == [["pro", "free"]]
    by_plan = {q["plan"]: q for q in as_json(invoke("queues", "--json"))}
    assert (by_plan["pro"]["workers"], by_plan["enterprise"]["workers"]) == (1, 0)
    assert by_plan["free"]["queued"] == 0
    table = invoke("queues").stdout.splitlines()
    assert table[0].split() == ["PLAN", "QUEUED", "RUNNING", "DEFERRED", "WORKERS"]
    assert [line.split()[0] for line in table[1:]] == ["enterprise", "business", "pro", "free"]


def test_enqueue_wait_exits_1_when_the_job_fails(
    invoke: Invoke, worker_process: subprocess.Popen[bytes]
) -> None:
    failed = invoke("enqueue", "demo.flaky", "--params", '{"fail_times": -1}', "--wait", "--json")
    assert failed.exit_code == 1
    record = json.loads(failed.stdout)
    assert record["status"] == "failed"
    assert record["error"]["code"] == "flaky_permanent"
    assert record["result"] is None


def test_wait_gives_up_after_its_timeout_and_says_nothing_serves_the_queue(
    invoke: Invoke,
) -> None:
    waited = invoke("enqueue", "demo.echo", "--wait", "--timeout", "0.3")  # no worker runs
    assert waited.exit_code == 1
    assert "warning: no worker is serving queue 'free'" in waited.stderr
    last = waited.stderr.splitlines()[-1]
    assert last.startswith("error [wait_timeout]: ")
    assert "still queued after 0.3s: no worker is serving queue 'free'" in last


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
    for job_id in ("f" * 32, "not-an-id", "ffffffff"):
        missing = invoke("status", job_id)
        assert missing.exit_code == 1
        assert missing.stderr.startswith("error [job_not_found]: ")


def test_list_filters_and_pages(invoke: Invoke) -> None:
    for task, tenant in [("demo.echo", "acme"), ("demo.sleep", "acme"), ("demo.echo", "other")]:
        as_json(invoke("enqueue", task, "--tenant", tenant, "--defer", "300", "--json"))
    acme = as_json(invoke("list", "--tenant", "acme", "--json"))
    assert acme["total"] == 2
    assert {job["task"] for job in acme["items"]} == {"demo.echo", "demo.sleep"}
    echo = as_json(invoke("list", "--tenant", "acme", "--task", "demo.echo", "--json"))
    assert [job["task"] for job in echo["items"]] == ["demo.echo"]
    page = as_json(invoke("list", "--tenant", "acme", "--limit", "1", "--offset", "1", "--json"))
    assert len(page["items"]) == 1
    done = as_json(invoke("list", "--tenant", "acme", "--status", "succeeded", "--json"))
    assert done["items"] == []
    assert invoke("list", "--status", "bogus").exit_code == 2
    everyone = as_json(invoke("list", "--all-tenants", "--json"))
    assert everyone["total"] == 3
    assert sorted(job["tenant"] for job in everyone["items"]) == ["acme", "acme", "other"]
    created = [job["created_at"] for job in everyone["items"]]
    assert created == sorted(created, reverse=True)
    second = as_json(invoke("list", "--all-tenants", "--limit", "2", "--offset", "1", "--json"))
    assert [j["id"] for j in second["items"]] == [j["id"] for j in everyone["items"][1:3]]


def test_cancel_a_deferred_job(invoke: Invoke) -> None:
    args = ["enqueue", "demo.echo", "--defer", "300", "--idempotency-key", "k1", "--json"]
    deferred = as_json(invoke(*args))
    assert deferred["status"] == "queued"
    assert deferred["scheduled_at"] > deferred["created_at"]
    cancelled = as_json(invoke("cancel", deferred["id"], "--json"))
    assert cancelled["status"] == "cancelled"
    again = invoke("cancel", deferred["id"])
    assert again.exit_code == 1 and "error [job_not_cancellable]" in again.stderr
    audit = [a["event"] for a in as_json(invoke("status", deferred["id"], "--json"))["audit"]]
    assert audit[0] == "enqueued" and "cancelled" in audit[-1]


def test_commands_other_than_up_need_a_redis_url(
    invoke: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("JOBRUNNER_REDIS_URL")
    for args in (["worker"], ["list"], ["status", "f" * 32], ["wait", "f" * 32]):
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
        [*CLI, "worker"],
        env=clean_environ(),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 2
    assert "JOBRUNNER_REDIS_URL is not set" in done.stderr and "Traceback" not in done.stderr


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
    assert as_json(invoke("list", "--json"))["total"] == 0


def test_list_and_status_report_an_undecodable_record_and_go_on(
    invoke: Invoke, redis_url: str, key_prefix: str
) -> None:
    ids = [
        as_json(invoke("enqueue", "demo.echo", "--defer", "300", "--json"))["id"] for _ in range(2)
    ]
    client = sync_redis.Redis.from_url(redis_url)
    try:  # what `--ttl 1e300` stored before bounds: list and status crashed for the tenant
        client.hset(f"{key_prefix}:job:{ids[0]}", "expires_at", "1e303")
    finally:
        client.close()
    listed = invoke("list", "--json")
    assert listed.exit_code == 0
    page = json.loads(listed.stdout)
    assert [job["id"] for job in page["items"]] == [ids[1]]
    assert [(s["id"], s["code"]) for s in page["skipped"]] == [(ids[0], "record_corrupt")]
    (warning,) = listed.stderr.splitlines()
    assert warning == f"warning: skipped 1 undecodable record(s): {ids[0]} (record_corrupt)"
    as_text = invoke("list")
    assert as_text.stderr == listed.stderr and as_text.stdout.count(ids[1][:8]) == 1
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
