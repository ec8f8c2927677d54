"""The `jobrunner` command as a person uses it: text output, short ids, wait, retry, tasks,
files, strict params. Fixtures (invoke, cli_env, worker_process) are in clitools.py."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from pathlib import Path

import pytest
import redis as sync_redis

from jobrunner.cli.env import own_data_dir
from jobrunner.settings import Settings
from jobrunner.store.keys import ALL_TENANTS, Keys
from tests.clitools import CLI, Invoke, as_json, clean_environ


def _enqueue(invoke: Invoke, *args: str) -> str:
    """The id of a job enqueued (and with --wait, followed to its end, whatever the outcome)."""
    done = invoke("enqueue", *args, "--json")
    assert done.exit_code in (0, 1) and done.stdout, done.stderr
    return str(json.loads(done.stdout)["id"])


def test_enqueue_says_what_it_did_and_warns_when_nothing_serves_the_queue(
    invoke: Invoke,
) -> None:
    queued = invoke("enqueue", "demo.echo", "--plan", "pro")
    assert queued.exit_code == 0, queued.stderr
    (line,) = queued.stdout.splitlines()
    assert line.startswith("queued demo.echo as job ") and line.endswith(" (plan pro)")
    job_id = line.split()[4]
    assert len(job_id) == 32
    assert queued.stderr.splitlines() == [
        "warning: no worker is serving queue 'pro': the job waits until one starts "
        "(`jobrunner up` or `jobrunner worker`; see `jobrunner workers`)"
    ]
    again = invoke("enqueue", "demo.echo", "--idempotency-key", "k", "--defer", "60")
    assert again.stdout.startswith("queued demo.echo as job ") and ", starts " in again.stdout
    replay = invoke("enqueue", "demo.echo", "--idempotency-key", "k", "--defer", "60")
    assert replay.stdout.strip().endswith("already exists for key 'k': queued")


def test_wait_prints_the_result_and_exits_by_outcome(
    invoke: Invoke, worker_process: subprocess.Popen[bytes]
) -> None:
    done = invoke("enqueue", "demo.echo", "--params", '{"n": 1}', "--plan", "pro", "--wait")
    assert done.exit_code == 0, done.stderr
    assert json.loads(done.stdout) == {"n": 1}  # the result, and only it, on stdout
    assert "warning" not in done.stderr
    assert done.stderr.splitlines()[-1].startswith("job ")
    assert " succeeded in " in done.stderr.splitlines()[-1]
    failed_id = _enqueue(invoke, "demo.flaky", "--params", '{"fail_times": -1}')
    failed = invoke("wait", failed_id[:8])
    assert failed.exit_code == 1
    assert failed.stdout == ""
    assert failed.stderr.splitlines()[-1] == (
        f"job {failed_id[:8]} failed [flaky_permanent]: demo.flaky was told to fail permanently"
    )
    as_dict = json.loads(invoke("wait", failed_id, "--json").stdout)
    assert as_dict["error"]["code"] == "flaky_permanent" and as_dict["result"] is None


def test_retry_repeats_a_failed_job_and_refuses_a_succeeded_one(
    invoke: Invoke, worker_process: subprocess.Popen[bytes]
) -> None:
    failed_id = _enqueue(invoke, "demo.flaky", "--params", '{"fail_times": -1}', "--wait")
    retried = invoke("retry", failed_id[:8], "--wait", "--json")
    assert retried.exit_code == 1  # it fails again: demo.flaky -1 never succeeds
    record = json.loads(retried.stdout)
    assert record["retry_of"] == failed_id and record["id"] != failed_id
    assert record["params"] == {"fail_times": -1} and record["status"] == "failed"
    text = invoke("retry", failed_id)
    assert text.stdout.startswith(f"queued retry of {failed_id[:8]} as job ")
    ok_id = _enqueue(invoke, "demo.echo", "--wait")
    refused = invoke("retry", ok_id)
    assert refused.exit_code == 1
    assert refused.stderr.startswith(f"error [job_not_retryable]: job {ok_id} is succeeded")


def test_status_shows_the_record_result_and_timeline(
    invoke: Invoke, worker_process: subprocess.Popen[bytes]
) -> None:
    job_id = _enqueue(invoke, "demo.sleep", "--params", '{"seconds": 0.1, "steps": 2}', "--wait")
    shown = invoke("status", job_id[:8])
    assert shown.exit_code == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0] == f"job {job_id}  demo.sleep  succeeded"
    assert "tenant default · plan free · priority 0 · attempt 1 of 3 · worker " in lines[1]
    assert "created " in lines[2] and "ran " in lines[2]
    timeline = lines[lines.index("timeline") + 1 :]
    events = [line.split()[2] for line in timeline]  # progress milestones in between
    assert events[:2] == ["enqueued", "started"] and events[-1] == "succeeded"
    assert timeline[0].split()[1] == "+0ms"
    result = lines[lines.index("result") + 1 : lines.index("timeline")]
    assert json.loads("\n".join(result)) == {"slept": 0.1, "steps": 2}


def test_list_workers_and_cancel_as_text(
    invoke: Invoke, worker_process: subprocess.Popen[bytes]
) -> None:
    deferred = _enqueue(invoke, "demo.echo", "--defer", "300", "--tenant", "acme")
    _enqueue(invoke, "demo.echo", "--defer", "300", "--tenant", "other")
    listed = invoke("list", "--tenant", "acme").stdout.splitlines()
    assert listed[0].split() == ["ID", "TASK", "STATUS", "PROGRESS", "CREATED", "TOOK"]
    assert listed[1].split()[:4] == [deferred[:8], "demo.echo", "queued", "0%"]
    assert listed[-1] == "1-1 of 1 (tenant acme)"
    everyone = invoke("list", "--all-tenants", "--limit", "1").stdout.splitlines()
    assert everyone[0].split()[-1] == "TENANT" and everyone[1].split()[-1] == "other"
    assert everyone[-1] == "1-1 of 2 (all tenants); more with --offset 1"
    assert invoke("list", "--tenant", "nobody").stdout == "no jobs (tenant nobody)\n"
    workers = invoke("workers").stdout.splitlines()
    assert workers[0].split() == ["WORKER", "QUEUES", "RUNNING", "DONE", "FAILED", "SEEN", "TASKS"]
    assert workers[1].split()[1:3] == ["pro,free", "0/4"]
    cancelled = invoke("cancel", deferred[:8])
    assert cancelled.stdout == f"job {deferred} cancelled (it had not started)\n"
    running = _enqueue(invoke, "demo.sleep", "--params", '{"seconds": 30}', "--plan", "pro")
    _wait_status(invoke, running, "running")
    asked = invoke("cancel", running)
    # the job may stop within the cancel call itself (then it is already cancelled)
    assert asked.stdout.startswith(f"job {running} is running: asked to stop") or (
        asked.stdout == f"job {running} cancelled\n"
    ), asked.stdout
    waited = invoke("wait", running, "--timeout", "10")
    assert waited.exit_code == 1 and waited.stderr.splitlines()[-1].endswith("cancelled")


def _wait_status(invoke: Invoke, job_id: str, wanted: str) -> None:
    deadline = time.monotonic() + 20
    while as_json(invoke("status", job_id, "--json"))["status"] != wanted:
        assert time.monotonic() < deadline, f"job {job_id} never became {wanted}"
        time.sleep(0.05)


def test_short_ids_need_8_characters_and_must_be_unique(
    invoke: Invoke, redis_url: str, key_prefix: str
) -> None:
    job_id = _enqueue(invoke, "demo.echo", "--defer", "300")
    assert as_json(invoke("status", job_id[:8], "--json"))["id"] == job_id
    assert as_json(invoke("status", job_id[:12].upper(), "--json"))["id"] == job_id
    short = invoke("status", job_id[:7])
    assert short.exit_code == 1
    assert short.stderr == (
        f"error [ambiguous_job_id]: job id {job_id[:7]!r} is too short: "
        "give at least 8 characters\n"
    )
    twins = ["abcdef01" + "1" * 24, "abcdef01" + "2" * 24]  # two ids sharing 8 characters
    keys = Keys(key_prefix)
    client = sync_redis.Redis.from_url(redis_url)
    try:  # the index of every tenant's jobs is where short ids are looked up
        client.zadd(keys.tenant_index(ALL_TENANTS), {twins[0]: 1, twins[1]: 2})
    finally:
        client.close()
    for command in ("status", "cancel", "wait", "retry"):
        ambiguous = invoke(command, "abcdef01")
        assert ambiguous.exit_code == 1
        assert ambiguous.stderr.startswith("error [ambiguous_job_id]: job id 'abcdef01' matches")
        assert twins[0] in ambiguous.stderr and twins[1] in ambiguous.stderr


def test_strict_params_and_local_paths_are_refused_at_enqueue(invoke: Invoke) -> None:
    typo = invoke("enqueue", "demo.sleep", "--params", '{"secs": 5}')
    assert typo.exit_code == 1
    assert typo.stderr == (
        "error [invalid_params]: invalid params for demo.sleep: secs: Extra inputs are not "
        "permitted\n"
    )
    local = invoke("enqueue", "validate_csv", "--params", '{"input_uri": "catalog.csv"}')
    assert local.exit_code == 1
    assert local.stderr == (
        "error [invalid_params]: invalid params for validate_csv: input_uri: catalog.csv is a "
        "local path; workers read inputs from the blob store: run `jobrunner upload "
        "catalog.csv` (or POST the file to /api/v1/uploads) and pass the upload:// uri you "
        "get back\n"
    )
    assert as_json(invoke("list", "--json"))["total"] == 0  # nothing was enqueued


def test_tasks_lists_names_descriptions_and_params(invoke: Invoke) -> None:
    listed = invoke("tasks")
    assert listed.exit_code == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert lines[0].split() == ["TASK", "DESCRIPTION"]
    at = next(i for i, line in enumerate(lines) if line.startswith("validate_csv "))
    assert "Check a product catalog CSV" in lines[at]
    assert lines[at + 1].startswith("    params: input_uri (required), ruleset, ")
    echo = next(i for i, line in enumerate(lines) if line.startswith("demo.echo "))
    assert lines[echo + 1] == "    params: any other field"
    assert lines[-1].startswith("demo tasks: on;")
    as_dict = as_json(invoke("tasks", "--json"))
    assert as_dict["demo_tasks"] is True
    names = [t["name"] for t in as_dict["tasks"]]
    assert names == sorted(names) and {"demo.sleep", "validate_csv", "process_pdf"} <= set(names)
    one = as_json(invoke("tasks", "demo.sleep", "--json"))
    assert one["params_schema"]["additionalProperties"] is False
    assert invoke("tasks", "demo.sleep").stdout.startswith("demo.sleep: Sleep in steps")
    unknown = invoke("tasks", "nope")
    assert unknown.exit_code == 1 and unknown.stderr.startswith("error [unknown_task]")


def test_upload_then_download_by_ref_or_by_job(
    invoke: Invoke, tmp_path: Path, worker_process: subprocess.Popen[bytes]
) -> None:
    (tmp_path / "in").mkdir()
    catalog = tmp_path / "in" / "catalog.csv"
    catalog.write_text("sku;title\nA1;Camiseta\n")
    uploaded = invoke("upload", str(catalog))
    assert uploaded.exit_code == 0, uploaded.stderr
    ref = uploaded.stdout.strip()
    assert ref.startswith("upload://") and ref.endswith("/catalog.csv")
    assert invoke("upload", str(tmp_path / "missing.csv")).exit_code == 2
    (tmp_path / "out").mkdir()
    saved = invoke("download", ref, "-o", "out/copy.csv")
    assert saved.stdout == f"saved {ref} to out/copy.csv (22 B)\n"
    assert (tmp_path / "out" / "copy.csv").read_text() == catalog.read_text()
    assert invoke("download", ref, "-o", "-").stdout == catalog.read_text()
    here = as_json(invoke("download", ref, "--json"))  # the ref's own name, in the cwd
    assert here == {"ref": ref, "path": "catalog.csv", "bytes": 22}
    exists = invoke("download", ref)
    assert exists.exit_code == 1 and "catalog.csv exists" in exists.stderr
    assert invoke("download", ref, "--force").exit_code == 0
    # a job whose result holds a ref: demo.echo returns its params
    job_id = _enqueue(invoke, "demo.echo", "--params", json.dumps({"report_ref": ref}), "--wait")
    by_job = invoke("download", job_id[:8], "-o", "out/by-job.csv")
    assert by_job.exit_code == 0, by_job.stderr
    assert (tmp_path / "out" / "by-job.csv").read_text() == catalog.read_text()
    wrong = invoke("download", job_id[:8], "corrected_ref")
    assert wrong.exit_code == 1
    assert "no ref 'corrected_ref'; refs in its result: report_ref" in wrong.stderr
    missing = invoke("download", "blob://" + "0" * 32 + "/nothing.csv")
    assert missing.exit_code == 1 and missing.stderr.startswith("error [blob_not_found]")


@pytest.mark.slow  # four `jobrunner env` processes
async def test_env_prints_the_exports_of_the_up_that_owns_the_data_dir(
    tmp_path: Path, redis_url: str
) -> None:
    data = tmp_path / "data"
    settings = Settings(_env_file=None, data_dir=data, redis_url=redis_url, demo_tasks=True,  # type: ignore[call-arg]
                        key_prefix="mine")  # fmt: skip
    async with own_data_dir(settings) as owned:  # `up` on an external Redis: the lock alone
        assert owned.redis_url == redis_url
        shown = await asyncio.to_thread(_env, data)
        assert shown.returncode == 0 and shown.stderr == ""
        assert shown.stdout == (
            f"export JOBRUNNER_REDIS_URL={redis_url} JOBRUNNER_DATA_DIR={data} "
            "JOBRUNNER_KEY_PREFIX=mine JOBRUNNER_DEMO_TASKS=true\n"
        )
        as_dict = json.loads((await asyncio.to_thread(_env, data, "--json")).stdout)
        assert as_dict["running"] is True and as_dict["env"]["JOBRUNNER_KEY_PREFIX"] == "mine"
    stopped = await asyncio.to_thread(_env, data)
    assert stopped.stdout.startswith(f"export JOBRUNNER_REDIS_URL={redis_url} ")
    assert stopped.stderr.startswith("warning: `jobrunner up` is not running on ")
    never = await asyncio.to_thread(_env, tmp_path / "elsewhere")
    assert never.returncode == 2
    assert never.stderr.startswith("error [config_error]: no `jobrunner up` has run with data dir")


def _env(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, "env", "--data-dir", str(data), *args],
        env=clean_environ(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_upload_is_recorded_for_its_tenant_and_the_cleanup(
    invoke: Invoke, tmp_path: Path, redis_url: str, key_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    catalog = tmp_path / "catalog.csv"
    catalog.write_text("sku;title\nA1;Camiseta\n")
    before = time.time() * 1000
    uploaded = invoke("upload", str(catalog), "--tenant", "acme")
    assert uploaded.exit_code == 0 and uploaded.stderr == ""
    ref = uploaded.stdout.strip()
    keys, client = Keys(key_prefix), sync_redis.Redis.from_url(redis_url)
    try:
        blob_id = ref.removeprefix("upload://").split("/")[0]
        owner = {
            k.decode(): v.decode() for k, v in client.hgetall(keys.blob_owner(blob_id)).items()
        }
        assert owner["tenant"] == "acme" and owner["content_type"].startswith("text/csv")
        due = client.zscore(keys.blob_expiry, f"{ref}\t")
        retention_ms = 72 * 3600 * 1000  # JOBRUNNER_UPLOAD_RETENTION_HOURS' default
        assert due is not None and before + retention_ms <= due <= time.time() * 1000 + retention_ms
    finally:
        client.close()
    monkeypatch.delenv("JOBRUNNER_REDIS_URL")  # nowhere to record it: said so, still uploaded
    unrecorded = invoke("upload", str(catalog))
    assert unrecorded.exit_code == 0 and unrecorded.stdout.startswith("upload://")
    assert "not recorded" in unrecorded.stderr
