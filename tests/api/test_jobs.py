"""Job routes over ASGI against the session's real Redis (and a real worker where jobs run)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from jobrunner.api.services import ApiServices
from jobrunner.runtime import JobRunner
from jobrunner.worker.runner import WorkerRunner
from tests.api.conftest import MakeKey, admin, assert_problem, bearer

JOBS = "/api/v1/jobs"


async def wait_status(
    client: httpx.AsyncClient, key: str, job_id: str, *want: str
) -> dict[str, Any]:
    """Wait for one of ``want`` on the job's event feed (no polling, no sleeps), then GET it.
    (httpx's ASGI transport gathers a whole response, so SSE is tested on a real server.)"""
    transport = client._transport
    assert isinstance(transport, httpx.ASGITransport)
    runner: JobRunner = transport.app.state.services.runner  # type: ignore[attr-defined]
    async with asyncio.timeout(30), contextlib.aclosing(runner.watch(job_id)) as events:
        async for event in events:
            if event.status.value in want:
                break
    body: dict[str, Any] = (await client.get(f"{JOBS}/{job_id}", headers=bearer(key))).json()
    assert body["status"] in want, body
    return body


@pytest.fixture
async def key(make_key: MakeKey) -> str:
    return await make_key("acme", "pro")


async def test_submit_is_202_with_location_and_lands_in_redis_first(
    client: httpx.AsyncClient, key: str, api: ApiServices
) -> None:
    reply = await client.post(
        JOBS,
        json={"task": "demo.echo", "params": {"a": 1}, "priority": 3},
        headers={**bearer(key), "X-Correlation-Id": "req-42"},
    )
    assert reply.status_code == 202, reply.text
    job = reply.json()
    assert reply.headers["Location"] == f"{JOBS}/{job['id']}" == job["links"]["self"]
    assert job["status"] == "queued" and job["plan"] == "pro" and job["priority"] == 3
    assert job["correlation_id"] == "req-42" and reply.headers["X-Correlation-Id"] == "req-42"
    assert job["created_at"].endswith("Z") and "tenant" not in job
    assert set(job["links"]) == {"self", "result", "events", "stream", "ws"}
    record = await api.runner.get(job["id"])  # in Redis already, with the tenant's name
    assert record.tenant == "acme" and record.correlation_id == "req-42"
    assert "RateLimit-Remaining" in reply.headers


async def test_a_job_runs_and_its_result_is_served(
    client: httpx.AsyncClient, key: str, worker: WorkerRunner
) -> None:
    job = (
        await client.post(JOBS, json={"task": "demo.echo", "params": {"x": 2}}, headers=bearer(key))
    ).json()
    done = await wait_status(client, key, job["id"], "succeeded")
    assert done["finished_at"].endswith("Z") and done["progress"] == 100
    result = await client.get(f"{JOBS}/{job['id']}/result", headers=bearer(key))
    assert result.status_code == 200
    assert result.json() == {
        "job_id": job["id"],
        "status": "succeeded",
        "result": {"x": 2},
        "finished_at": done["finished_at"],
        "files": {},
    }


async def test_result_of_an_unfinished_job_is_409_with_its_status(
    client: httpx.AsyncClient, key: str
) -> None:
    job = (await client.post(JOBS, json={"task": "demo.echo"}, headers=bearer(key))).json()
    body = assert_problem(await client.get(f"{JOBS}/{job['id']}/result", headers=bearer(key)), 409)
    assert body["job_status"] == "queued" and body["type"] == "/problems/job-not-succeeded"


async def test_unknown_task_is_422_listing_the_tasks(client: httpx.AsyncClient, key: str) -> None:
    body = assert_problem(
        await client.post(JOBS, json={"task": "nope"}, headers=bearer(key)), 422, "unknown-task"
    )
    assert "validate_csv" in body["tasks"] and "demo.echo" in body["tasks"]


async def test_invalid_params_are_422_with_each_field(client: httpx.AsyncClient, key: str) -> None:
    reply = await client.post(
        JOBS,
        json={"task": "demo.sleep", "params": {"seconds": -1, "steps": "x"}},
        headers=bearer(key),
    )
    body = assert_problem(reply, 422, "invalid-params")
    assert {e["loc"] for e in body["errors"]} == {"params.seconds", "params.steps"}
    assert all(e["msg"] for e in body["errors"])


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"task": "demo.echo", "priority": 10}, "priority"),
        ({"task": "demo.echo", "surprise": 1}, "surprise"),
        ({"task": "demo.echo", "defer_s": 1, "run_at": "2030-01-01T00:00:00Z"}, "(root)"),
        ({"task": "demo.echo", "run_at": "2030-01-01T00:00:00"}, "run_at"),
        ([1, 2], "(root)"),
    ],
)
async def test_bad_options_are_422_naming_the_field(
    client: httpx.AsyncClient, key: str, body: Any, loc: str
) -> None:
    problem = assert_problem(await client.post(JOBS, json=body, headers=bearer(key)), 422)
    assert loc in {e["loc"] for e in problem["errors"]}


async def test_malformed_json_is_400_and_a_big_body_413(
    client: httpx.AsyncClient, key: str, api: ApiServices
) -> None:
    headers = {**bearer(key), "content-type": "application/json"}
    assert_problem(
        await client.post(JOBS, content=b'{"task": ', headers=headers), 400, "malformed-json"
    )
    big = b'{"task": "demo.echo", "params": {"pad": "' + b"x" * api.settings.max_body_bytes + b'"}}'
    assert_problem(await client.post(JOBS, content=big, headers=headers), 413, "content-too-large")

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted while read
        for start in range(0, len(big), 65536):
            yield big[start : start + 65536]

    assert_problem(await client.post(JOBS, content=chunks(), headers=headers), 413)
    wrong_type = {**bearer(key), "content-type": "text/plain"}
    assert_problem(await client.post(JOBS, content=b"{}", headers=wrong_type), 415)


async def test_a_lower_plan_is_allowed_a_higher_one_is_403(
    client: httpx.AsyncClient, key: str
) -> None:
    lower = await client.post(JOBS, json={"task": "demo.echo", "plan": "free"}, headers=bearer(key))
    assert lower.status_code == 202 and lower.json()["queue"].endswith(":queue:free")
    higher = await client.post(
        JOBS, json={"task": "demo.echo", "plan": "enterprise"}, headers=bearer(key)
    )
    assert_problem(higher, 403, "plan-not-allowed")
    unknown = await client.post(
        JOBS, json={"task": "demo.echo", "plan": "gold"}, headers=bearer(key)
    )
    assert assert_problem(unknown, 422)["errors"][0]["loc"] == "plan"


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hook",
        "http://10.1.2.3/hook",
        "http://169.254.169.254/latest",
        "http://[::1]/hook",
        "http://localhost:9000/hook",
        "ftp://example.com/hook",
        "https://",
    ],
)
async def test_callback_urls_inside_our_network_are_refused(
    client: httpx.AsyncClient, key: str, url: str
) -> None:
    reply = await client.post(
        JOBS, json={"task": "demo.echo", "callback_url": url}, headers=bearer(key)
    )
    body = assert_problem(reply, 422)
    assert body["errors"][0]["loc"] == "callback_url"


async def test_a_public_callback_url_is_stored(client: httpx.AsyncClient, key: str) -> None:
    url = "https://hooks.example.com/jobs?x=1"
    reply = await client.post(
        JOBS, json={"task": "demo.echo", "callback_url": url}, headers=bearer(key)
    )
    assert reply.status_code == 202 and reply.json()["callback_url"] == url


async def test_inputs_must_be_the_callers_own(
    client: httpx.AsyncClient, make_key: MakeKey, key: str
) -> None:
    other = await make_key("globex", "pro")
    upload = await client.post("/api/v1/uploads", content=b"sku\n1\n", headers=bearer(other))
    theirs = upload.json()["uri"]
    for uri in (theirs, "upload://" + "0" * 32 + "/x.csv", "file:///etc/passwd"):
        body = {"task": "validate_csv", "params": {"input_uri": uri}}
        problem = assert_problem(await client.post(JOBS, json=body, headers=bearer(key)), 422)
        assert problem["errors"][0]["loc"] == "params.input_uri"
    mine = (await client.post("/api/v1/uploads", content=b"sku\n1\n", headers=bearer(key))).json()
    body = {"task": "validate_csv", "params": {"input_uri": mine["uri"]}}
    assert (await client.post(JOBS, json=body, headers=bearer(key))).status_code == 202


async def test_cancel_a_waiting_job_then_409_once_finished(
    client: httpx.AsyncClient, key: str
) -> None:
    job = (
        await client.post(JOBS, json={"task": "demo.echo", "defer_s": 60}, headers=bearer(key))
    ).json()
    cancelled = await client.delete(f"{JOBS}/{job['id']}", headers=bearer(key))
    assert cancelled.status_code == 202 and cancelled.json()["status"] == "cancelled"
    again = await client.delete(f"{JOBS}/{job['id']}", headers=bearer(key))
    assert assert_problem(again, 409, "job-not-cancellable")["job_status"] == "cancelled"


async def test_cancel_a_running_job_stops_it(
    client: httpx.AsyncClient, key: str, worker: WorkerRunner
) -> None:
    body = {"task": "demo.sleep", "params": {"seconds": 30, "steps": 300}}
    job = (await client.post(JOBS, json=body, headers=bearer(key))).json()
    await wait_status(client, key, job["id"], "running")
    asked = await client.delete(f"{JOBS}/{job['id']}", headers=bearer(key))
    assert asked.status_code == 202 and asked.json()["cancel_requested"] is True
    await wait_status(client, key, job["id"], "cancelled")


async def test_retry_a_failed_job_is_a_new_job_naming_it(
    client: httpx.AsyncClient, key: str, worker: WorkerRunner
) -> None:
    body = {"task": "demo.flaky", "params": {"fail_times": -1}, "priority": 2}
    job = (await client.post(JOBS, json=body, headers=bearer(key))).json()
    failed = await wait_status(client, key, job["id"], "failed")
    assert failed["error"]["code"] == "flaky_permanent"
    retried = await client.post(f"{JOBS}/{job['id']}/retry", headers=bearer(key))
    assert retried.status_code == 202
    new = retried.json()
    assert new["id"] != job["id"] and new["retry_of"] == job["id"]
    assert new["params"] == {"fail_times": -1} and new["priority"] == 2
    assert retried.headers["Location"] == f"{JOBS}/{new['id']}"


async def test_retry_of_a_waiting_job_is_409(client: httpx.AsyncClient, key: str) -> None:
    job = (await client.post(JOBS, json={"task": "demo.echo"}, headers=bearer(key))).json()
    reply = await client.post(f"{JOBS}/{job['id']}/retry", headers=bearer(key))
    assert assert_problem(reply, 409, "job-not-retryable")["job_status"] == "queued"


async def test_list_is_newest_first_filtered_and_paged(
    client: httpx.AsyncClient, key: str, make_key: MakeKey
) -> None:
    ids = []
    for task in ("demo.echo", "demo.sleep", "demo.echo"):
        ids.append((await client.post(JOBS, json={"task": task}, headers=bearer(key))).json()["id"])
    other = await make_key("globex")
    await client.post(JOBS, json={"task": "demo.echo"}, headers=bearer(other))
    page = (await client.get(JOBS, headers=bearer(key))).json()
    assert [j["id"] for j in page["items"]] == ids[::-1]
    assert (page["total"], page["limit"], page["offset"]) == (3, 20, 0)
    echo = (
        await client.get(
            JOBS, params={"task": "demo.echo", "status": "queued"}, headers=bearer(key)
        )
    ).json()
    assert [j["id"] for j in echo["items"]] == [ids[2], ids[0]]
    second = (await client.get(JOBS, params={"limit": 1, "offset": 1}, headers=bearer(key))).json()
    assert [j["id"] for j in second["items"]] == [ids[1]] and second["total"] == 3
    for bad in ({"limit": 0}, {"limit": 101}, {"status": "weird"}, {"offset": -1}):
        problem = assert_problem(await client.get(JOBS, params=bad, headers=bearer(key)), 422)
        assert problem["errors"][0]["loc"].startswith("query.")


async def test_events_are_the_audit_trail(
    client: httpx.AsyncClient, key: str, worker: WorkerRunner
) -> None:
    job = (await client.post(JOBS, json={"task": "demo.echo"}, headers=bearer(key))).json()
    await wait_status(client, key, job["id"], "succeeded")
    trail = (await client.get(f"{JOBS}/{job['id']}/events", headers=bearer(key))).json()
    assert trail["job_id"] == job["id"]
    events = [e["event"] for e in trail["items"]]
    assert events[0] == "enqueued" and "started" in events
    assert trail["items"][-1]["status"] == "succeeded" and trail["items"][-1]["at"].endswith("Z")
    assert all("worker_id" not in e for e in trail["items"])


async def test_tenants_see_only_their_own_jobs_on_every_route(
    client: httpx.AsyncClient, key: str, make_key: MakeKey, runner: JobRunner
) -> None:
    other = await make_key("globex")
    job = (await client.post(JOBS, json={"task": "demo.echo"}, headers=bearer(key))).json()
    jid = job["id"]
    routes = [
        ("GET", f"{JOBS}/{jid}"),
        ("GET", f"{JOBS}/{jid}/result"),
        ("GET", f"{JOBS}/{jid}/events"),
        ("GET", f"{JOBS}/{jid}/stream"),
        ("POST", f"{JOBS}/{jid}/retry"),
        ("DELETE", f"{JOBS}/{jid}"),
    ]
    for method, path in routes:
        theirs = await client.request(method, path, headers=bearer(other))
        missing = await client.request(method, path.replace(jid, "f" * 32), headers=bearer(other))
        assert_problem(theirs, 404, "job-not-found")
        assert theirs.json()["detail"] == missing.json()["detail"].replace("f" * 32, jid)
    assert (await client.get(JOBS, headers=bearer(other))).json()["total"] == 0
    assert (await runner.get(jid)).status.value == "queued"  # the DELETE did nothing


async def test_every_tenant_route_wants_a_key(client: httpx.AsyncClient) -> None:
    jid = "a" * 32
    for method, path in [
        ("GET", JOBS),
        ("POST", JOBS),
        ("GET", f"{JOBS}/{jid}"),
        ("DELETE", f"{JOBS}/{jid}"),
        ("GET", f"{JOBS}/{jid}/result"),
        ("POST", f"{JOBS}/{jid}/retry"),
        ("GET", f"{JOBS}/{jid}/events"),
        ("GET", f"{JOBS}/{jid}/stream"),
        ("POST", "/api/v1/uploads"),
        ("GET", "/api/v1/files/upload%3A%2F%2Fx"),
        ("GET", "/api/v1/tasks"),
        ("GET", "/api/v1/usage"),
    ]:
        reply = await client.request(method, path)
        assert_problem(reply, 401, "unauthorized")
        assert reply.headers["WWW-Authenticate"].startswith("Bearer")
    admin_as_tenant = await client.get(JOBS, headers=admin())
    assert_problem(admin_as_tenant, 403)


async def test_a_revoked_key_is_401_from_then_on(client: httpx.AsyncClient, key: str) -> None:
    assert (await client.get(JOBS, headers=bearer(key))).status_code == 200
    listed = (await client.get("/api/v1/admin/keys", headers=admin())).json()
    key_id = listed["items"][0]["key_id"]
    await client.delete(f"/api/v1/admin/keys/{key_id}", headers=admin())
    assert_problem(await client.get(JOBS, headers=bearer(key)), 401)


async def test_tasks_catalog_lists_names_descriptions_and_schemas(
    client: httpx.AsyncClient, key: str
) -> None:
    items = (await client.get("/api/v1/tasks", headers=bearer(key))).json()["items"]
    by_name = {t["name"]: t for t in items}
    assert by_name["validate_csv"]["description"].startswith("Check a product catalog")
    assert "input_uri" in by_name["validate_csv"]["params_schema"]["properties"]
